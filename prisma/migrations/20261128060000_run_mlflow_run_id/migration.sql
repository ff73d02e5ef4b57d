-- AlterTable
ALTER TABLE "runs" ADD COLUMN     "mlflow_run_id" TEXT;

-- AlterTable
ALTER TABLE "models" ADD COLUMN     "recommended_hyperparameters" JSONB;

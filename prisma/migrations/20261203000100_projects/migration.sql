-- Projects: every run, dataset, principle set and uploaded model belongs to one. Existing rows move
-- to a `default` project; existing keys stay as they were: admin keys span every project, other keys
-- are issued for `default` (they saw everything that is now in it). The built-in model stays shared
-- (no project).

-- CreateTable
CREATE TABLE "projects" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "projects_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "projects_name_key" ON "projects"("name");

INSERT INTO "projects" ("id", "name") VALUES ('00000000-0000-4000-8000-000000000001', 'default');

-- AlterTable
ALTER TABLE "api_keys" ADD COLUMN "project_id" UUID;
UPDATE "api_keys" SET "project_id" = '00000000-0000-4000-8000-000000000001' WHERE NOT ('admin' = ANY ("scopes"));

ALTER TABLE "models" ADD COLUMN "project_id" UUID;
UPDATE "models" SET "project_id" = '00000000-0000-4000-8000-000000000001' WHERE "kind" <> 'builtin_tiny';

ALTER TABLE "datasets" ADD COLUMN "project_id" UUID;
UPDATE "datasets" SET "project_id" = '00000000-0000-4000-8000-000000000001';
ALTER TABLE "datasets" ALTER COLUMN "project_id" SET NOT NULL;

ALTER TABLE "principle_sets" ADD COLUMN "project_id" UUID;
UPDATE "principle_sets" SET "project_id" = '00000000-0000-4000-8000-000000000001';
ALTER TABLE "principle_sets" ALTER COLUMN "project_id" SET NOT NULL;

ALTER TABLE "runs" ADD COLUMN "project_id" UUID;
UPDATE "runs" SET "project_id" = '00000000-0000-4000-8000-000000000001';
ALTER TABLE "runs" ALTER COLUMN "project_id" SET NOT NULL;

-- CreateIndex
CREATE INDEX "api_keys_project_id_idx" ON "api_keys"("project_id");
CREATE INDEX "models_project_id_idx" ON "models"("project_id");
CREATE INDEX "datasets_project_id_created_at_idx" ON "datasets"("project_id", "created_at");
CREATE INDEX "principle_sets_project_id_created_at_idx" ON "principle_sets"("project_id", "created_at");
CREATE INDEX "runs_project_id_created_at_idx" ON "runs"("project_id", "created_at");

-- AddForeignKey
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_project_id_fkey" FOREIGN KEY ("project_id") REFERENCES "projects"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "models" ADD CONSTRAINT "models_project_id_fkey" FOREIGN KEY ("project_id") REFERENCES "projects"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "datasets" ADD CONSTRAINT "datasets_project_id_fkey" FOREIGN KEY ("project_id") REFERENCES "projects"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "principle_sets" ADD CONSTRAINT "principle_sets_project_id_fkey" FOREIGN KEY ("project_id") REFERENCES "projects"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "runs" ADD CONSTRAINT "runs_project_id_fkey" FOREIGN KEY ("project_id") REFERENCES "projects"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

import Type, { type Static } from 'typebox'
import { DATASET_FORMATS, type DatasetFormat } from '../sso/records.ts'
import { TimestampSchema, UuidSchema } from './common.ts'

export const DATASET_FORMAT_NAMES = Object.keys(DATASET_FORMATS) as DatasetFormat[]
export const DatasetFormatSchema = Type.Enum(DATASET_FORMAT_NAMES)

export const DatasetUploadQuerySchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    format: DatasetFormatSchema,
  },
  { additionalProperties: false },
)
export type DatasetUploadQuery = Static<typeof DatasetUploadQuerySchema>

export const DatasetSchema = Type.Object({
  id: UuidSchema,
  name: Type.String(),
  format: DatasetFormatSchema,
  content_hash: Type.String({ description: 'SHA-256 hex of the stored JSONL' }),
  line_count: Type.Integer(),
  bytes: Type.Integer(),
  created_at: TimestampSchema,
})
export type DatasetDto = Static<typeof DatasetSchema>

/**
 * Typed application errors. Every layer throws these; only `api/` knows HTTP (it maps `code` to a
 * status in one table). Messages say what failed and with which values.
 */
export const ERROR_CODES = [
  'validation_failed',
  'not_found',
  'conflict',
  'invalid_state',
  'unauthorized',
  'forbidden',
  'rate_limited',
  'payload_too_large',
  'uri_too_long',
  'unsupported_media_type',
  'header_too_large',
  'model_load_failed',
  'dataset_invalid',
  'shape_mismatch',
  'graph_invalid',
  'grad_failed',
  'provider_unavailable',
  'training_failed',
  'internal',
] as const

export type ErrorCode = (typeof ERROR_CODES)[number]

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    options?: ErrorOptions,
  ) {
    super(message, options)
    this.name = new.target.name
  }
}

export class NotFoundError extends AppError {
  constructor(kind: string, id: string) {
    super('not_found', `${kind} '${id}' was not found`, { kind, id })
  }
}

/** An AppError subclass base with a fixed `code`: `new XError(message, details?, options?)`. */
function withCode(code: ErrorCode) {
  return class extends AppError {
    constructor(message: string, details?: unknown, options?: ErrorOptions) {
      super(code, message, details, options)
    }
  }
}

export class InvalidStateError extends withCode('invalid_state') {}

export class ValidationError extends withCode('validation_failed') {}

/** A graph that is wrong before onnxruntime sees it: undefined input, rank/dtype mismatch, unknown op. */
export class GraphError extends withCode('graph_invalid') {}

export class ShapeError extends withCode('shape_mismatch') {}

export class GradError extends withCode('grad_failed') {}

export class ProviderUnavailableError extends withCode('provider_unavailable') {}

export class ModelLoadError extends withCode('model_load_failed') {}

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

export class InvalidStateError extends AppError {
  constructor(message: string, details?: unknown) {
    super('invalid_state', message, details)
  }
}

export class ValidationError extends AppError {
  constructor(message: string, details?: unknown) {
    super('validation_failed', message, details)
  }
}

/** A graph that is wrong before onnxruntime sees it: undefined input, rank/dtype mismatch, unknown op. */
export class GraphError extends AppError {
  constructor(message: string, details?: unknown, options?: ErrorOptions) {
    super('graph_invalid', message, details, options)
  }
}

export class ShapeError extends AppError {
  constructor(message: string, details?: unknown) {
    super('shape_mismatch', message, details)
  }
}

export class GradError extends AppError {
  constructor(message: string, details?: unknown) {
    super('grad_failed', message, details)
  }
}

export class ProviderUnavailableError extends AppError {
  constructor(message: string, details?: unknown) {
    super('provider_unavailable', message, details)
  }
}

export class ModelLoadError extends AppError {
  constructor(message: string, details?: unknown, options?: ErrorOptions) {
    super('model_load_failed', message, details, options)
  }
}

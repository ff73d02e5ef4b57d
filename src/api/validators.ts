import AjvCompiler from '@fastify/ajv-compiler'
import type { Options } from 'ajv'

/**
 * Query strings, paths and headers are text, so their numbers and booleans are parsed from it (the
 * configured coercion). A JSON body carries its own types: `"lr":"1"` or `"use_w":null` is refused
 * rather than converted, so the body validator never coerces.
 */
export function buildValidators(): AjvCompiler.BuildCompilerFromPool {
  const build = AjvCompiler()
  return (externalSchemas, options) => {
    const parsing = build(externalSchemas, options)
    // The app never uses JTD mode, so its options are Ajv's.
    const ajvOptions = options as { customOptions?: Options } | undefined
    const strict = build(externalSchemas, {
      ...ajvOptions,
      customOptions: { ...ajvOptions?.customOptions, coerceTypes: false },
    })
    return (route) => (route.httpPart === 'body' ? strict : parsing)(route)
  }
}

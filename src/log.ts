import { type Logger, type LoggerOptions, pino } from 'pino'

/** Logger options shared by the API (as Fastify's logger) and the worker. Pretty on a TTY, JSON otherwise. */
export function loggerOptions(level: string): LoggerOptions {
  const options: LoggerOptions = {
    level,
    redact: { paths: ['req.headers.authorization', 'req.headers["x-api-key"]'], censor: '[redacted]' },
  }
  if (process.stdout.isTTY) {
    options.transport = {
      target: 'pino-pretty',
      options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' },
    }
  }
  return options
}

export function createLogger(level: string): Logger {
  return pino(loggerOptions(level))
}

export type { Logger }

import { type Logger, type LoggerOptions, pino } from 'pino'

/** The URL with the value of every `api_key` parameter (however its name is percent-encoded) replaced. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?')
  if (q < 0) return url
  const params = url
    .slice(q + 1)
    .split('&')
    .map((part) => {
      const eq = part.indexOf('=')
      const name = eq < 0 ? part : part.slice(0, eq)
      let decoded = name
      try {
        decoded = decodeURIComponent(name.replaceAll('+', ' '))
      } catch {
        // A malformed escape: the query parser keeps the name as written too.
      }
      return decoded.trim().toLowerCase() === 'api_key' ? `${name}=[redacted]` : part
    })
  return `${url.slice(0, q)}?${params.join('&')}`
}

interface LoggedRequest {
  method: string
  url: string
  host?: string
  ip?: string
  socket?: { remotePort?: number }
}

/**
 * Logger options shared by the API (as Fastify's logger) and the worker. Pretty on a TTY, JSON
 * otherwise. Keys never reach the log: auth headers are redacted and a request's URL is logged
 * without its `api_key` value.
 */
export function loggerOptions(level: string): LoggerOptions {
  const options: LoggerOptions = {
    level,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers["x-api-key"]',
        'req.headers["sec-websocket-protocol"]',
      ],
      censor: '[redacted]',
    },
    serializers: {
      req: (req: LoggedRequest) => ({
        method: req.method,
        url: redactUrl(req.url),
        host: req.host,
        remoteAddress: req.ip,
        remotePort: req.socket?.remotePort,
      }),
    },
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

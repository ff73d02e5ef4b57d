import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadConfig } from '../src/config.ts'

test('loadConfig applies defaults and converts numbers', () => {
  const config = loadConfig({ PORT: '8080' })
  assert.equal(config.PORT, 8080)
  assert.equal(config.LOG_LEVEL, 'info')
  assert.equal(config.DATABASE_URL, undefined)
})

test('loadConfig lists every bad variable', () => {
  assert.throws(
    () => loadConfig({ PORT: 'abc', DATABASE_URL: 'mysql://x' }),
    (err: Error) => err.message.includes('PORT') && err.message.includes('DATABASE_URL'),
  )
})

test('loadConfig refuses MLflow basic auth with only one of user and password', () => {
  assert.throws(
    () => loadConfig({ MLFLOW_TRACKING_URI: 'http://127.0.0.1:5000', MLFLOW_TRACKING_USERNAME: 'u' }),
    /MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD: set both/,
  )
  const config = loadConfig({ MLFLOW_TRACKING_USERNAME: 'u', MLFLOW_TRACKING_PASSWORD: 'p' })
  assert.equal(config.MLFLOW_TRACKING_PASSWORD, 'p')
})

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

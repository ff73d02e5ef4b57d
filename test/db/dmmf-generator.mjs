// A Prisma generator (JSON-RPC over stdio, the protocol of @prisma/generator-helper) that writes the
// schema's DMMF datamodel to the generator block's `output`. The drift test runs `prisma generate`
// with it to read schema.prisma exactly as Prisma parses it, offline.
import { writeFileSync } from 'node:fs'
import readline from 'node:readline'

const respond = (message) => process.stderr.write(`${JSON.stringify(message)}\n`)

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const request = JSON.parse(line)
  if (request.method === 'getManifest') {
    respond({ jsonrpc: '2.0', id: request.id, result: { manifest: { prettyName: 'DMMF dump' } } })
  } else if (request.method === 'generate') {
    writeFileSync(request.params.generator.output.value, JSON.stringify(request.params.dmmf.datamodel))
    respond({ jsonrpc: '2.0', id: request.id, result: null })
  }
})

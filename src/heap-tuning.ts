import { setFlagsFromString } from 'node:v8'

/**
 * V8 lets its heap grow up to four times what survived the last full collection before the next
 * one; under a stream of changes that is garbage the daemon never needed (at 10 000 services
 * 288 MB at the peak as plain `node dist/main.js`, 180 MB with this). So the daemon asks for
 * growth by a fifth itself, as `npm start` and the image do with `--heap-growing-percent=20`,
 * unless node was given the flag (command line or NODE_OPTIONS). V8 reads this flag each time it
 * sizes the heap, so setting it at run time takes effect; the semi-space size is fixed at start
 * and stays a command-line flag (docs/config.md, "Running").
 */
const FLAG = 'heap-growing-percent'
const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((arg) => arg.replaceAll('_', '-').startsWith(`--${FLAG}`))
if (!given) setFlagsFromString(`--${FLAG}=20`)

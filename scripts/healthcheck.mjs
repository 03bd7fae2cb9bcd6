// The container image's HEALTHCHECK (the original's check.sh): healthy when the control API
// answers /ping and, with a listener configured, once the listener's services are applied
// (/successfulinitreload). The address, port and listener come from the daemon's own settings
// reader, so secrets (/run/secrets/dfp_port, ...) count exactly as they do for the daemon.
// HEALTHCHECK=false (the original's switch) reports healthy without asking.
// Exit 0 = healthy, 1 = unhealthy, as Docker expects.
import { loadSettings } from '../dist/settings.js'

if (process.env.HEALTHCHECK?.toLowerCase() === 'false') process.exit(0)

let settings
try {
  settings = loadSettings()
} catch (err) {
  process.stderr.write(`unhealthy: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
}

// The API listens on IP (0.0.0.0 by default): ask it on loopback unless it is bound elsewhere.
const anyAddress = ['0.0.0.0', '::', '[::]'].includes(settings.IP)
const host = anyAddress ? '127.0.0.1' : settings.IP.includes(':') && !settings.IP.startsWith('[') ? `[${settings.IP}]` : settings.IP
const base = `http://${host}:${settings.PORT}/v1/docker-flow-proxy`

async function expectOk(path) {
  const reply = await fetch(base + path, { signal: AbortSignal.timeout(8000) })
  await reply.body?.cancel()
  if (!reply.ok) throw new Error(`${path} answered ${reply.status}`)
}

try {
  await expectOk('/ping')
  // LISTENER_ADDRESS is read as the list of the listeners' URLs.
  if (settings.LISTENER_ADDRESS.length > 0) await expectOk('/successfulinitreload')
  process.exit(0)
} catch (err) {
  process.stderr.write(`unhealthy: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
}

// Set-up shared by `npm start` and `npm test` on a fresh clone: installs dependencies,
// builds, and makes sure HAProxy is there (installed with apt-get when we are root).
// Uses only Node's own modules, since it runs before the dependencies exist.
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const say = (line) => process.stderr.write(`dfp: ${line}\n`)

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', ...options })
  if (result.status !== 0) {
    say(`\`${command} ${args.join(' ')}\` failed`)
    process.exit(result.status ?? 1)
  }
}

const mtime = (path) => (existsSync(path) ? statSync(path).mtimeMs : 0)
function newest(dir) {
  let latest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs)
  }
  return latest
}

// 1. Dependencies, when missing or older than the lock file.
const installed = join(root, 'node_modules', '.package-lock.json')
if (mtime(installed) < mtime(join(root, 'package-lock.json'))) {
  say('installing dependencies (npm ci)')
  run('npm', ['ci', '--no-audit', '--no-fund'])
}

// 2. Build, when dist/ is older than the sources.
if (mtime(join(root, 'dist', 'main.js')) < Math.max(newest(join(root, 'src')), mtime(join(root, 'tsconfig.json')))) {
  say('building (tsc)')
  run(join(root, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'])
  // The package's bin (`dfp`) runs as a program.
  chmodSync(join(root, 'dist', 'cli.js'), 0o755)
}

// 3. HAProxy.
const bin = process.env.HAPROXY_BIN || 'haproxy'
const hasHaproxy = () => spawnSync(bin, ['-v'], { stdio: 'ignore' }).status === 0
if (!hasHaproxy()) {
  const canApt = process.getuid?.() === 0 && spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0
  if (!canApt) {
    say(`${bin} is not installed: install HAProxy 2.6 or later (on Debian/Ubuntu: sudo apt-get install -y haproxy) or set HAPROXY_BIN`)
    process.exit(1)
  }
  say('installing haproxy (apt-get)')
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  run('apt-get', ['update', '-qq'], { env })
  run('apt-get', ['install', '-y', '-qq', 'haproxy'], { env })
  if (!hasHaproxy()) {
    say(`${bin} is still not runnable after installing haproxy`)
    process.exit(1)
  }
}

// Set-up shared by `npm start` and `npm test` on a fresh clone: installs dependencies,
// builds, and makes sure HAProxy is there (and, for `npm test`, dnsmasq and Chromium), installed
// with apt-get when we are root.
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

// 3. The programs: HAProxy for the daemon; with `--test` (npm test's pretest) also what the
// tests drive: dnsmasq (answers tasks.<SERVICE_NAME> in the distribute tests), Chromium (the
// status page test, through playwright-core), pebble (the ACME tests) and openssl. Installed with apt-get when we are root, else one
// line says what to install.
const forTests = process.argv.includes('--test')
// With `--bench` (npm run bench): wrk (requests per second) and Chromium (the status page).
const forBench = process.argv.includes('--bench')
const runs = (command, args) => spawnSync(command, args, { stdio: 'ignore' }).status === 0
const haproxyBin = process.env.HAPROXY_BIN || 'haproxy'
const chromiumBin = process.env.CHROMIUM_BIN || '/usr/bin/chromium'
const programs = [
  { name: haproxyBin, apt: 'haproxy', present: () => runs(haproxyBin, ['-v']), hint: 'HAProxy 2.6 or later, or set HAPROXY_BIN' },
  ...(forTests
    ? [
        // dnsmasq lives in /usr/sbin, which a user's PATH may lack; the tests run it by name.
        { name: 'dnsmasq', apt: 'dnsmasq-base', present: () => runs('dnsmasq', ['--version']), hint: 'dnsmasq, on PATH' },
        { name: chromiumBin, apt: 'chromium', present: () => existsSync(chromiumBin), hint: 'Chromium, or set CHROMIUM_BIN' },
        // A real ACME server for the ACME tests (test/helpers/pebble.ts), with its DNS server.
        { name: 'pebble', apt: 'pebble', present: () => runs('sh', ['-c', 'command -v pebble && command -v pebble-challtestsrv']), hint: 'pebble and pebble-challtestsrv, on PATH' },
        { name: 'openssl', apt: 'openssl', present: () => runs('openssl', ['version']), hint: 'openssl, on PATH' },
      ]
    : []),
  ...(forBench
    ? [
        { name: 'wrk', apt: 'wrk', present: () => runs('sh', ['-c', 'command -v wrk']), hint: 'wrk, on PATH' },
        ...(forTests ? [] : [{ name: chromiumBin, apt: 'chromium', present: () => existsSync(chromiumBin), hint: 'Chromium, or set CHROMIUM_BIN' }]),
      ]
    : []),
]
const missing = programs.filter((program) => !program.present())
if (missing.length) {
  const packages = missing.map((program) => program.apt)
  const canApt = process.getuid?.() === 0 && runs('apt-get', ['--version'])
  if (!canApt) {
    say(`missing: ${missing.map((program) => `${program.name} (${program.hint})`).join(', ')}`)
    say(`on Debian/Ubuntu: sudo apt-get install -y ${packages.join(' ')}`)
    process.exit(1)
  }
  say(`installing ${packages.join(' ')} (apt-get)`)
  // Another apt-get running on the machine is waited for, not failed on.
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const lock = ['-o', 'DPkg::Lock::Timeout=600']
  run('apt-get', [...lock, 'update', '-qq'], { env })
  run('apt-get', [...lock, 'install', '-y', '-qq', ...packages], { env })
  const still = missing.filter((program) => !program.present())
  if (still.length) {
    say(`still missing after apt-get: ${still.map((program) => program.name).join(', ')}`)
    process.exit(1)
  }
}

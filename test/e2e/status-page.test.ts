import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import t from 'tap'
import { startWithUpstream } from '../helpers/daemon.js'

// The status page in a real headless Chromium (Debian's `chromium`, installed by .ci/run), on a
// phone-sized screen. The screenshot is kept under .tap/screenshots for people to look at.
const root = fileURLToPath(new URL('../..', import.meta.url))
const outputDir = join(root, '.tap', 'screenshots')
const executablePath = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium'

const { daemon, port } = await startWithUpstream('catalog')
const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] })
t.teardown(() => browser.close())

t.test('the status page shows each service, its routes and health, and refreshes itself', async (t) => {
  t.equal((await daemon.call('reconfigure', { serviceName: 'catalog', servicePath: '/catalog,/items', serviceDomain: 'shop.example.com', port, outboundHostname: '127.0.0.1' })).status, 200)
  const page = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, deviceScaleFactor: 2 })
  await page.goto(`http://127.0.0.1:${daemon.apiPort}/v1/docker-flow-proxy/status`)

  const card = page.locator('[data-service="catalog"]')
  await card.waitFor({ timeout: 15_000 })
  t.match(await card.innerText(), /catalog/)
  t.match(await card.innerText(), /\/catalog, \/items/, 'its paths')
  t.match(await card.innerText(), /shop\.example\.com/, 'its domain')
  t.match(await card.innerText(), /from api/, 'its source')
  t.equal(await card.locator(`[data-backend-status]`).first().getAttribute('data-backend-status'), 'UP', 'backend health from HAProxy')
  t.match(await card.innerText(), new RegExp(`127\\.0\\.0\\.1:${port}`), 'the server address HAProxy uses')
  t.match(await page.locator('#last-reload').innerText(), /last reload: ok/)
  t.notMatch(await page.locator('body').innerText(), /\b(null|undefined)\b/, 'no missing value printed')
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
  t.ok(overflow <= 0, 'nothing wider than a phone screen')

  // A service added later appears without reloading the page.
  t.equal((await daemon.call('reconfigure', { serviceName: 'late', servicePath: '/late', port, outboundHostname: '127.0.0.1' })).status, 200)
  await page.locator('[data-service="late"]').waitFor({ timeout: 20_000 })
  t.pass('the page refreshed itself')

  await mkdir(outputDir, { recursive: true })
  const file = join(outputDir, 'status-page.png')
  await page.screenshot({ path: file, fullPage: true })
  t.comment(`screenshot: ${file}`)
})

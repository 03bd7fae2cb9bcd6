import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import t from 'tap'
import { parseService } from '../../src/service/params.js'
import { startWithUpstream } from '../helpers/daemon.js'
import type { StatusAnswer } from '../helpers/api-json.js'

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
  // Traffic: a rate needs two samples a second apart, so it shows from the second refresh on.
  for (let i = 0; i < 20; i++) t.equal((await daemon.proxy('/catalog/x', { Host: 'shop.example.com' })).status, 200)
  await card.locator('[data-traffic]').filter({ hasText: /\d+(\.\d+)? req\/s/ }).waitFor({ timeout: 20_000 })
  t.match(await card.locator('[data-traffic]').innerText(), /5xx \d+(\.\d+)? \/s/, 'its 5xx rate')
  t.match(await card.locator('[data-traffic]').innerText(), /response \d+ ms/, 'its response time')
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

t.test('at 10 000 services: one page at a time, search and paging', async (t) => {
  const services = Array.from({ length: 10_000 }, (_, i) => {
    const params = { serviceName: `svc${String(i).padStart(5, '0')}`, servicePath: `/svc${i}/`, port, outboundHostname: '127.0.0.1' }
    return { kind: 'put' as const, service: parseService(params, { separator: ',' }), params }
  })
  // One batch: one validation and one reload, as a listener's first pull would be.
  await daemon.applier.apply(services)
  const total = daemon.live.services.size
  t.ok(total >= 10_000)

  const json = await daemon.call<StatusAnswer>('status', { type: 'json', page: '2', perPage: '100' })
  t.equal(json.json.services.length, 100, 'the JSON pages too')
  t.same(json.json.paging, { query: '', page: 2, perPage: 100, matched: total, total })
  const refused = await daemon.call('status', { type: 'json', page: '0' })
  t.equal(refused.status, 400)
  t.match(refused.json.Message, /^page: /, 'a bad page is named')

  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } })
  await page.goto(`http://127.0.0.1:${daemon.apiPort}/v1/docker-flow-proxy/status`)
  await page.locator('#count').filter({ hasText: `${total} of ${total} services` }).waitFor({ timeout: 15_000 })
  t.equal(await page.locator('[data-service]').count(), 50, 'one page of 50 is drawn')
  t.equal(await page.locator('#page-info').innerText(), `page 1 of ${Math.ceil(total / 50)}`)

  await page.locator('#search').fill('svc07777')
  await page.locator('#count').filter({ hasText: `1 of ${total} services` }).waitFor({ timeout: 10_000 })
  t.equal(await page.locator('[data-service]').count(), 1, 'the search finds the one service')
  t.match(await page.locator('[data-service="svc07777"]').innerText(), /\/svc7777\//, 'with its path')
  t.equal(await page.locator('[data-service="svc07777"] [data-backend-status]').first().getAttribute('data-backend-status'), 'UP', 'and its health')

  await page.locator('#search').fill('/svc123')
  await page.locator('#count').filter({ hasText: `11 of ${total} services` }).waitFor({ timeout: 10_000 })
  t.pass('paths are searched too (/svc123/ and /svc1230/ … /svc1239/)')

  await page.locator('#search').fill('')
  await page.locator('#count').filter({ hasText: `${total} of ${total} services` }).waitFor({ timeout: 10_000 })
  const firstOnPage = await page.locator('[data-service]').first().getAttribute('data-service')
  await page.locator('#next').click()
  await page.locator('#page-info').filter({ hasText: /^page 2 of/ }).waitFor({ timeout: 10_000 })
  const secondPage = await page.locator('[data-service]').first().getAttribute('data-service')
  t.not(secondPage, firstOnPage, 'the next page shows other services')
  await page.locator('#prev').click()
  await page.locator('#page-info').filter({ hasText: /^page 1 of/ }).waitFor({ timeout: 10_000 })
  t.equal(await page.locator('[data-service]').first().getAttribute('data-service'), firstOnPage, 'and back')
})

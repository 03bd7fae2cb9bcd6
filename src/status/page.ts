/**
 * The status page: one HTML document with its CSS and script inline (no build step, no
 * external request). The script reads one page of the JSON twin (`?type=json&q=…&page=…`)
 * every REFRESH seconds and builds it with DOM calls, so service values are always text, never
 * markup. Only that page is fetched and drawn, so it stays quick at 10 000 services.
 */
export const statusPage = (refreshSeconds: number) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dfp status</title>
<style>
  :root { color-scheme: light dark; --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --muted: #6e7781; --line: #d0d7de55; }
  * { box-sizing: border-box; }
  body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; padding: 12px; max-width: 1100px; margin-inline: auto; }
  header { display: flex; flex-wrap: wrap; gap: 4px 16px; align-items: baseline; margin-bottom: 8px; }
  h1 { font-size: 1.3em; margin: 0; }
  .muted { color: var(--muted); font-size: .9em; }
  .summary { display: flex; flex-wrap: wrap; gap: 8px; margin: 8px 0 16px; }
  .pill { border: 1px solid var(--line); border-radius: 999px; padding: 2px 10px; font-size: .9em; }
  .service { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; margin-bottom: 12px; }
  .service h2 { font-size: 1.1em; margin: 0 0 6px; display: flex; gap: 8px; flex-wrap: wrap; align-items: baseline; }
  .route { border-top: 1px solid var(--line); padding: 6px 0; }
  .kv { display: grid; grid-template-columns: max-content 1fr; gap: 0 10px; }
  .kv dt { color: var(--muted); } .kv dd { margin: 0; overflow-wrap: anywhere; }
  code { font: .9em ui-monospace, SFMono-Regular, Menlo, monospace; }
  .servers { list-style: none; padding: 0; margin: 4px 0 0; }
  .servers li { display: flex; flex-wrap: wrap; gap: 4px 10px; padding: 2px 0; }
  .status { font-weight: 600; }
  .unknown { color: var(--muted); } .up { color: var(--ok); } .down { color: var(--bad); } .other { color: var(--warn); }
  #error { color: var(--bad); }
  .tools { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin-bottom: 12px; }
  .tools input { flex: 1 1 200px; font: inherit; padding: 4px 8px; min-width: 0; }
  .tools button { font: inherit; padding: 4px 10px; }
  .traffic { display: flex; flex-wrap: wrap; gap: 4px 12px; font-size: .9em; margin-bottom: 4px; }
</style>
</head>
<body>
<header><h1>dfp status</h1><span class="muted" id="updated">loading…</span></header>
<div id="error" role="alert"></div>
<div class="summary" id="summary"></div>
<div class="tools">
  <input id="search" type="search" placeholder="Search name, path or domain" aria-label="Search services">
  <button id="prev" type="button">‹ Previous</button>
  <span id="page-info" class="muted"></span>
  <button id="next" type="button">Next ›</button>
</div>
<main id="services"></main>
<section id="acme"></section>
<script>
(() => {
  const REFRESH = ${refreshSeconds} * 1000
  const base = location.pathname.replace(/\\/$/, '') + '?type=json&perPage=50'
  const view = { q: '', page: 1, lastPage: 1 }
  let timer = null
  let generation = 0
  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag)
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v)
    for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child))
    return node
  }
  // "no check": HAProxy does not health-check the server, so its health is unknown.
  const health = (status) => /^(UP|OPEN)/.test(status) ? 'up' : /^(DOWN|MAINT|NOLB)/.test(status) ? 'down' : status === 'no check' ? 'unknown' : 'other'
  const kv = (pairs) => el('dl', { class: 'kv' }, pairs.filter(([, v]) => v !== '' && v !== null).flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]))
  const rate = (value, unit) => value === null ? 'measuring…' : value + ' ' + unit
  const ago = (iso) => iso ? Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000)) + ' s ago' : 'never'

  function render(report) {
    const h = report.haproxy
    const reload = h.lastReload
    document.getElementById('updated').textContent = 'updated ' + new Date(report.generatedAt).toLocaleTimeString()
    document.getElementById('summary').replaceChildren(
      el('span', { class: 'pill', id: 'count' }, report.paging ? report.paging.matched + ' of ' + report.paging.total + ' services' : report.services.length + ' services'),
      el('span', { class: 'pill' }, 'worker generation ' + h.workerGeneration),
      el('span', { class: 'pill', id: 'last-reload' }, 'last reload: ', reload
        ? el('span', { class: reload.ok ? 'up' : 'down' }, (reload.ok ? 'ok' : 'failed') + ', ' + ago(reload.at) + ', ' + reload.ms + ' ms' + (reload.error ? ' — ' + reload.error : ''))
        : 'none since start'),
      el('span', { class: 'pill' }, 'listener: ', report.listener.addresses.length ? (report.listener.ready ? 'synced ' + ago(report.listener.lastSync) : 'not synced yet') : 'none'),
      ...(h.statsAvailable ? [] : [el('span', { class: 'pill down' }, 'HAProxy statistics unavailable: ' + (h.statsError || ''))]),
      ...(report.unserved || []).map((u) => el('span', { class: 'pill down', 'data-unserved': u.serviceName }, u.serviceName + ' saved but not served (retried): ' + u.reason)),
    )
    const cards = report.services.map((s) => el('section', { class: 'service', 'data-service': s.serviceName },
      el('h2', {}, s.serviceName, el('span', { class: 'muted' }, 'from ' + s.source)),
      el('div', { class: 'traffic', 'data-traffic': '' },
        el('span', {}, rate(s.traffic.requestsPerSecond, 'req/s')),
        el('span', {}, '5xx ' + rate(s.traffic.http5xxPerSecond, '/s')),
        el('span', {}, 'response ' + (s.traffic.responseTimeMs === null ? 'no requests yet' : s.traffic.responseTimeMs + ' ms')),
      ),
      s.routes.map((r) => el('div', { class: 'route' },
        kv([
          ['mode', r.mode],
          ['paths', r.paths.join(', ')],
          ['domains', r.domains.join(', ')],
          ['port', r.port],
          ['srcPort', r.srcPort === null ? '' : String(r.srcPort)],
        ]),
        r.backends.length === 0 ? el('div', { class: 'muted' }, 'no backend in HAProxy') : r.backends.map((b) => el('div', {},
          el('code', {}, b.name), ' ', el('span', { class: 'status ' + health(b.status), 'data-backend-status': b.status }, b.status),
          el('ul', { class: 'servers' }, b.servers.map((sv) => el('li', {},
            el('code', {}, sv.name), el('span', { class: 'status ' + health(sv.status) }, sv.status),
            el('span', { class: 'state ' + (sv.state === 'ready' ? 'up' : sv.state === 'down' ? 'down' : 'other'), 'data-server-state': sv.state }, sv.state),
            sv.weight === null ? null : el('span', { class: 'muted', 'data-server-weight': String(sv.weight) }, 'weight ' + sv.weight),
            sv.address ? el('span', { class: 'muted' }, sv.address) : null,
            sv.check ? el('span', { class: 'muted' }, 'check ' + sv.check) : null,
          ))),
        )),
      )),
    ))
    const empty = report.paging && report.paging.total > 0 ? 'No service matches the search.' : 'No services are configured.'
    document.getElementById('services').replaceChildren(...(cards.length ? cards : [el('p', { class: 'muted' }, empty)]))
    // ACME certificates: state, issuer, expiry, next renewal or retry, the last error.
    const acmeState = (state) => state === 'valid' ? 'up' : state === 'failed' ? 'down' : 'other'
    document.getElementById('acme').replaceChildren(...(report.acme.length ? [el('h2', {}, 'ACME certificates'), ...report.acme.map((a) => el('div', { class: 'service', 'data-acme': a.domains.join(',') },
      el('code', {}, a.domains.join(', ')), ' ', el('span', { class: 'status ' + acmeState(a.state) }, a.state),
      kv([
        ['services', a.services.join(', ')],
        ['issuer', a.issuer],
        ['expires', a.validTo],
        ['next attempt', a.nextAttempt],
        ['failures', a.failures ? String(a.failures) : ''],
        ['last error', a.lastError],
      ]),
    ))] : []))
    const p = report.paging
    view.page = p ? p.page : 1
    view.lastPage = p ? Math.max(1, Math.ceil(p.matched / p.perPage)) : 1
    document.getElementById('page-info').textContent = 'page ' + view.page + ' of ' + view.lastPage
    document.getElementById('prev').disabled = view.page <= 1
    document.getElementById('next').disabled = view.page >= view.lastPage
  }

  // Each refresh cancels the pending one; an answer to an older request is dropped.
  async function refresh() {
    clearTimeout(timer)
    const mine = ++generation
    try {
      const answer = await fetch(base + '&page=' + view.page + '&q=' + encodeURIComponent(view.q), { cache: 'no-store' })
      if (!answer.ok) throw new Error('status ' + answer.status)
      const report = await answer.json()
      if (mine !== generation) return
      render(report)
      document.getElementById('error').textContent = ''
    } catch (err) {
      if (mine === generation) document.getElementById('error').textContent = 'Could not refresh: ' + err.message
    } finally {
      if (mine === generation) timer = setTimeout(refresh, REFRESH)
    }
  }
  let typing = null
  document.getElementById('search').addEventListener('input', (event) => {
    clearTimeout(typing)
    typing = setTimeout(() => { view.q = event.target.value; view.page = 1; refresh() }, 150)
  })
  document.getElementById('prev').addEventListener('click', () => { if (view.page > 1) { view.page--; refresh() } })
  document.getElementById('next').addEventListener('click', () => { if (view.page < view.lastPage) { view.page++; refresh() } })
  refresh()
})()
</script>
</body>
</html>
`

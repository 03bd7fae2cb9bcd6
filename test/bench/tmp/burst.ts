import { startDaemon } from '../../helpers/daemon.js'
import { httpUpstream } from '../../helpers/net.js'
const daemon = await startDaemon()
const upstream = await httpUpstream('bench')
console.log('started', new Date().toISOString())
const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => daemon.call('reconfigure', { serviceName: `b${i}`, servicePath: `/b${i}/`, port: String(upstream.port), outboundHostname: '127.0.0.1' })))
console.log('replied', replies.filter(r => r.status===200).length, daemon.applier.reloads, new Date().toISOString())
for (let k=0;k<3;k++) { const s=performance.now(); await daemon.applier.reload(); console.log('reload', performance.now()-s) }
await daemon.close(); await upstream.close(); console.log('closed')

import t from 'tap'
import { checkCertName, inspectCertificate } from '../../src/pem.js'
import { makeCertificate } from '../helpers/certs.js'

const pem = makeCertificate('unit.test', 2)

t.test('a good bundle is described; an expired one is flagged, not refused', async (t) => {
  const info = inspectCertificate(pem)
  t.match(info, { subject: 'CN=unit.test', domains: ['unit.test'], expired: false })
  t.match(info.fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/)
  const later = new Date(Date.now() + 3 * 24 * 3600 * 1000)
  t.equal(inspectCertificate(pem, later).expired, true)
})

t.test('bad bundles are refused with the reason', async (t) => {
  const certOnly = pem.slice(0, pem.indexOf('-----BEGIN PRIVATE KEY'))
  const keyOnly = pem.slice(pem.indexOf('-----BEGIN PRIVATE KEY'))
  t.throws(() => inspectCertificate(''), { message: /no PEM certificate/ })
  t.throws(() => inspectCertificate(certOnly), { message: /no PEM private key/ })
  t.throws(() => inspectCertificate(keyOnly), { message: /no PEM certificate/ })
  t.throws(() => inspectCertificate(certOnly.replace(/[A-Za-z]{20}/, 'x') + keyOnly), { message: /does not parse/ }, 'a damaged certificate')
  const encrypted = `${certOnly}-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n`
  t.throws(() => inspectCertificate(encrypted), { message: /encrypted/ })
})

t.test('certificate names are plain file names', async (t) => {
  for (const good of ['example.com', 'cert_1', 'a-b.pem']) t.equal(checkCertName(good), undefined, good)
  for (const bad of ['', '../x', 'a/b', '/etc/passwd', '..', 'a..b', '.hidden', 'x y', 'é']) t.type(checkCertName(bad), 'string', JSON.stringify(bad))
})

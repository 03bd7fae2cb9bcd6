/** The listener's own port, added when an address names none (inventory §7.1). */
const LISTENER_PORT = 8080

/**
 * `host`, `host:port` or an http(s) URL → the listener's base URL, with `:8080` when the
 * address gives no port. Throws on anything else.
 */
export function listenerUrl(address: string): string {
  const withScheme = /^https?:\/\//i.test(address) ? address : `http://${address}`
  const url = new URL(withScheme)
  // URL drops a port equal to the scheme's default, so look for one in the text itself.
  const authority = withScheme.replace(/^https?:\/\//i, '').split('/')[0] ?? ''
  const explicitPort = /:\d+$/.test(authority)
  if (!url.hostname || url.pathname !== '/' || url.search) throw new Error(`not a host, host:port or base URL: ${address}`)
  return explicitPort ? `${url.protocol}//${authority}` : `${url.protocol}//${url.host}:${LISTENER_PORT}`
}

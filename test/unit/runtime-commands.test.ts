// The Runtime API command union (src/haproxy/commands.ts): each kind's line, and the answer
// check — a missing, empty-when-it-should-speak, unfinished or unexpected answer is a failure.
import t from 'tap'
import { addMapCommands, answerProblem, commandLine, type RuntimeCommand } from '../../src/haproxy/commands.js'

const file = '/cfg/maps/path.map'
/** One command of each kind, and the answer HAProxy 2.6 gives when it succeeds (each ends with an empty line). */
const successes: Array<[RuntimeCommand, string]> = [
  [{ kind: 'add server', backend: 'dfp_spare_0', server: 'web', host: '10.0.0.1', port: '80' }, 'New server registered.\n\n'],
  [{ kind: 'enable server', backend: 'dfp_spare_0', server: 'web' }, '\n'],
  [{ kind: 'set server addr', backend: 'web-be80_0', server: 'web', address: '10.0.0.2' }, "IP changed from '10.0.0.1' to '10.0.0.2' by 'stats socket command'\n\n"],
  [{ kind: 'set weight', backend: 'web-be80_0', server: 'canary', weight: 10 }, '\n'],
  [{ kind: 'add map', file, entries: ['/a 2:web-be80_0', '/b 2:web-be80_0'] }, '\n'],
  [{ kind: 'set map', file, key: '/a', value: '3:other-be80_0' }, '\n'],
  [{ kind: 'del map', file, key: '/a' }, '\n'],
  [{ kind: 'set ssl cert', path: '/cfg/certs/a.pem', pem: '-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n' }, 'Transaction created for certificate /cfg/certs/a.pem!\n\n'],
  [{ kind: 'commit ssl cert', path: '/cfg/certs/a.pem' }, 'Committing /cfg/certs/a.pem.\nSuccess!\n\n'],
]

t.test('every kind: its own success passes, alone and among the others', async (t) => {
  for (const [command, answer] of successes) t.equal(answerProblem([command], answer), undefined, commandLine(command).split('\n')[0] ?? command.kind)
  // Every pair, in both orders: the answers are told apart by their closing empty lines.
  for (const [a, answerA] of successes) {
    for (const [b, answerB] of successes) t.equal(answerProblem([a, b], answerA + answerB), undefined, `${a.kind} then ${b.kind}`)
  }
})

t.test('every kind: no answer, an unfinished answer, another kind\'s answer or an error is a failure', async (t) => {
  const errors = ['Key not found.\n\n', 'No such server.\n\n', 'entry not found.\n\n', 'Unknown command.\n\n', 'Empty weight string empty or preceded by garbage\n']
  for (const [command, answer] of successes) {
    const name = commandLine(command).split('\n')[0] ?? command.kind
    t.ok(answerProblem([command], ''), `${name}: no answer at all (the line read as a payload start, issue 21 item 8)`)
    // Every cut of the successful answer short of its end.
    for (let cut = 0; cut < answer.length; cut++) t.ok(answerProblem([command], answer.slice(0, cut)), `${name}: cut after ${cut} characters`)
    for (const error of errors) t.ok(answerProblem([command], error), `${name}: ${JSON.stringify(error)}`)
    for (const [other, otherAnswer] of successes) {
      if (otherAnswer !== answer && !(answer === '\n' && otherAnswer === '\n')) t.ok(answerProblem([command], otherAnswer), `${name}: the answer of ${other.kind}`)
    }
    // One answer missing among several: the commands after the swallowed one never answered.
    t.ok(answerProblem([command, command], answer), `${name}: one answer for two commands`)
    t.ok(answerProblem([command], answer + answer), `${name}: two answers for one command`)
  }
})

t.test('arguments HAProxy\'s CLI would read otherwise are refused before anything is sent', async (t) => {
  const unsafe = ['/lt<<', 'a b', 'a;b', 'a\\b', "a'b", 'a"b', 'a#b', '', 'a\nb', 'a\tb']
  for (const value of unsafe) {
    t.throws(() => commandLine({ kind: 'del map', file, key: value }), `del map key ${JSON.stringify(value)}`)
    t.throws(() => commandLine({ kind: 'set map', file, key: '/a', value }), `set map value ${JSON.stringify(value)}`)
    t.throws(() => commandLine({ kind: 'add map', file, entries: [`${value} 2:web`] }), `add map key ${JSON.stringify(value)}`)
    t.throws(() => commandLine({ kind: 'add server', backend: 'dfp_spare_0', server: value, host: '10.0.0.1', port: '80' }), `server ${JSON.stringify(value)}`)
  }
  for (const weight of [-1, 257, 1.5, Number.NaN]) t.throws(() => commandLine({ kind: 'set weight', backend: 'b', server: 's', weight }), `weight ${weight}`)
  t.equal(commandLine({ kind: 'set weight', backend: 'b', server: 's', weight: 256 }), 'set weight b/s 256')
})

t.test('new map entries go in payloads of at most 8000 bytes, each closed by an empty line when sent', async (t) => {
  const entries = Array.from({ length: 2000 }, (_, i) => `/path-${i} 2:web-be80_0`)
  const commands = addMapCommands(file, entries)
  t.ok(commands.length > 1, 'split')
  t.same(commands.flatMap((c) => (c.kind === 'add map' ? c.entries : [])), entries, 'every entry once, in order')
  for (const command of commands) t.ok(commandLine(command).length <= 8100, 'fits the buffer')
})

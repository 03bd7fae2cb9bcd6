import fc from 'fast-check'
import t from 'tap'
import { LayeredMap } from '../../src/state/layered-map.js'

// The layered map (src/state/layered-map.ts) against a plain Map: any sequence of batches of
// sets and removes, on any earlier version (versions are immutable and share their base), reads
// the same — get, has, size, and iteration as a set of entries.

type Edit = readonly [string, number | undefined]
const key = fc.constantFrom(...Array.from({ length: 40 }, (_, i) => `k${i}`))
const edit: fc.Arbitrary<Edit> = fc.tuple(key, fc.option(fc.integer({ min: 0, max: 9 }), { nil: undefined }))
const batch = fc.array(edit, { maxLength: 30 })

const applied = (map: ReadonlyMap<string, number>, edits: readonly Edit[]) => {
  const next = new Map(map)
  for (const [k, v] of edits) {
    if (v === undefined) next.delete(k)
    else next.set(k, v)
  }
  return next
}

/** What a reader of the map sees: the entries, size, and get/has of every key. */
const reading = (map: ReadonlyMap<string, number>) => ({
  size: map.size,
  entries: [...map].sort(([a], [b]) => (a < b ? -1 : 1)),
  keys: [...map.keys()].sort(),
  values: [...map.values()].sort(),
  lookups: Array.from({ length: 40 }, (_, i) => [map.get(`k${i}`), map.has(`k${i}`)]),
})

t.test('every version reads as the plain map made by the same edits', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(), batch), { maxLength: 60 }), (steps) => {
      const versions: Array<[LayeredMap<string, number>, Map<string, number>]> = [[LayeredMap.empty(), new Map()]]
      for (const [pick, edits] of steps) {
        // Any earlier version may be changed again: none of them is written to.
        const [layered, plain] = versions[pick % versions.length] as [LayeredMap<string, number>, Map<string, number>]
        // Iterating a version folds its overlay, which the versions made from it then share.
        if (pick % 3 === 0) void [...layered.keys()]
        versions.push([layered.with(edits), applied(plain, edits)])
      }
      for (const [layered, plain] of versions) {
        if (JSON.stringify(reading(layered)) !== JSON.stringify(reading(plain))) return false
      }
      return true
    }),
    { numRuns: 300 },
  )
  t.pass('300 runs of up to 60 batches')
})

t.test('an edit that changes nothing gives the same object; the overlay is folded as it grows', async (t) => {
  const base = LayeredMap.of<string, number>(Array.from({ length: 10_000 }, (_, i) => [`s${i}`, i] as const))
  t.equal(base.with([['absent', undefined]]), base, 'removing an absent key')
  let map = base
  for (let i = 0; i < 1000; i++) map = map.with([[`n${i}`, i], [`s${i}`, undefined]])
  t.equal(map.size, 10_000)
  t.equal(map.get('s0'), undefined)
  t.equal(map.get('n999'), 999)
  t.equal(base.get('s0'), 0, 'the first version is untouched')
  t.equal(base.size, 10_000)
})

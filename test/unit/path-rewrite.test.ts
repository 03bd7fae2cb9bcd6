import t from 'tap'
import { captureGroups, pathRewriteRule, rewriteProblem } from '../../src/service/path-rewrite.js'

t.test('capture groups are counted as PCRE counts them', async (t) => {
  t.equal(captureGroups('^/plus/([a-z]+)/'), 1)
  t.equal(captureGroups('^/a/(x)(y(z))'), 3, 'nested')
  t.equal(captureGroups('\\(not\\)'), 0, 'escaped parentheses')
  t.equal(captureGroups('[(]x[)]'), 0, 'in a character class')
  t.equal(captureGroups('[]()](a)'), 1, 'a ] first in a class is a literal')
  t.equal(captureGroups('(?:a)(?=b)(?!c)(?<=d)'), 0, 'non-capturing and look-around')
  t.equal(captureGroups('(?<name>a)(?P<other>b)'), 2, 'named groups capture')
})

t.test('the rule replaces the first match only and shifts the references', async (t) => {
  t.equal(pathRewriteRule('^/plus/([a-z]+)/', '/demo/\\1/'), "http-request replace-path '^(.*?)(?:^/plus/([a-z]+)/)(.*)$' '\\1/demo/\\2/\\3'")
  t.equal(pathRewriteRule('/x', '/y%z'), "http-request replace-path '^(.*?)(?:/x)(.*)$' '\\1/y%%z\\2'", '% doubled (log-format)')
})

t.test('what cannot be a rewrite is named', async (t) => {
  t.equal(rewriteProblem('/a', '/b'), undefined)
  t.match(rewriteProblem("/a'", '/b'), /single quote/)
  t.match(rewriteProblem('(a)(b)(c)(d)(e)(f)(g)(h)', ''), /at most 7 capture groups/)
  t.equal(rewriteProblem('(a)(b)(c)(d)(e)(f)(g)', '\\7'), undefined, 'seven is fine')
  t.equal(rewriteProblem('/(a)', '/\\2'), 'the replacement refers to \\2, but the search has 1 capture group')
})

// Unit tests of Sources/TocsinAPI/Dashboard/csv.js: cell quoting, formula
// defusing, and the exported table of a view.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { EXPORT_HEADER, csvCell, exportBaseName, exportRows, toCsv } from '../../Sources/TocsinAPI/Dashboard/csv.js';

test('csvCell: empty for null and undefined, numbers and booleans as written', () => {
  assert.equal(csvCell(null), '');
  assert.equal(csvCell(undefined), '');
  assert.equal(csvCell(''), '');
  assert.equal(csvCell(0), '0');
  assert.equal(csvCell(-5), '-5', 'a negative number is not a formula');
  assert.equal(csvCell(1.5e300), '1.5e+300');
  assert.equal(csvCell(NaN), 'NaN');
  assert.equal(csvCell(true), 'true');
  assert.equal(csvCell('plain text'), 'plain text');
});

test('csvCell quotes commas, quotes and line breaks, doubling quotes', () => {
  assert.equal(csvCell('a,b'), '"a,b"');
  assert.equal(csvCell('say "hi"'), '"say ""hi"""');
  assert.equal(csvCell('"'), '""""');
  assert.equal(csvCell('line 1\nline 2'), '"line 1\nline 2"');
  assert.equal(csvCell('a\r\nb'), '"a\r\nb"');
  assert.equal(csvCell('a, "b"\nc'), '"a, ""b""\nc"');
});

test('csvCell keeps leading and trailing spaces by quoting them', () => {
  assert.equal(csvCell(' padded '), '" padded "');
  assert.equal(csvCell('trailing '), '"trailing "');
  assert.equal(csvCell('in side'), 'in side');
});

test('csvCell defuses text that a spreadsheet would run as a formula', () => {
  assert.equal(csvCell('=SUM(A1:A9)'), "'=SUM(A1:A9)");
  assert.equal(csvCell('+1'), "'+1");
  assert.equal(csvCell('-1'), "'-1");
  assert.equal(csvCell('@cmd'), "'@cmd");
  assert.equal(csvCell('\tx'), "'\tx");
  assert.equal(csvCell('\rx'), `"'\rx"`);
  assert.equal(csvCell('=a,b'), `"'=a,b"`);
  assert.equal(csvCell('a=b'), 'a=b');
});

test('csvCell writes objects and arrays as JSON', () => {
  assert.equal(csvCell({ reason: 'quota', seq: '1' }), '"{""reason"":""quota"",""seq"":""1""}"');
  assert.equal(csvCell({}), '{}');
  assert.equal(csvCell(['x']), '"[""x""]"');
});

test('toCsv: CRLF between and after rows', () => {
  assert.equal(toCsv([['a', 'b'], [1, 2]]), 'a,b\r\n1,2\r\n');
  assert.equal(toCsv([['multi\nline', 'x']]), '"multi\nline",x\r\n');
  assert.equal(toCsv([[]]), '\r\n');
  assert.equal(toCsv([]), '\r\n');
});

test('exportRows without data is the header alone', () => {
  assert.deepEqual(exportRows(null, null), [EXPORT_HEADER]);
  assert.deepEqual(exportRows(undefined, []), [EXPORT_HEADER]);
  assert.equal(toCsv(exportRows(null, [])), 'section,platform,group,field,value,id,occurred_at,received_at,name,labels\r\n');
});

test('exportRows: every field of every platform and of the totals, then the events', () => {
  const summary = {
    platforms: [{ platform: 'tiktok', upload: { success: 180, failure: 20, success_rate: 0.9 }, webhook: { avg_latency_s: null } }],
    totals: { upload: { success: 376, failure: 24, success_rate: 0.94 } },
  };
  const events = [
    { id: 7, name: 'upload.failure', platform: 'tiktok', value: 1, occurred_at: 'o', received_at: 'r', labels: { seq: '3' } },
    { id: 8, name: 'api.call', platform: null, value: null, occurred_at: 'o2', received_at: 'r2' },
  ];
  const rows = exportRows(summary, events);
  const fieldsPerEntry = 17; // oauth 3, upload 3, webhook 4, token_refresh 2, api 3, worker 2
  assert.equal(rows.length, 1 + 2 * fieldsPerEntry + 2);
  assert.deepEqual(rows[4], ['summary', 'tiktok', 'upload', 'success', 180, '', '', '', '', '']);
  assert.deepEqual(rows[1], ['summary', 'tiktok', 'oauth', 'success', '', '', '', '', '', ''], 'a missing group is empty');
  assert.deepEqual(rows.find((r) => r[1] === 'tiktok' && r[3] === 'avg_latency_s'),
    ['summary', 'tiktok', 'webhook', 'avg_latency_s', '', '', '', '', '', ''], 'null is empty');
  assert.deepEqual(rows.find((r) => r[1] === 'all' && r[3] === 'success_rate' && r[2] === 'upload'),
    ['summary', 'all', 'upload', 'success_rate', 0.94, '', '', '', '', '']);
  assert.deepEqual(rows.at(-2), ['event', 'tiktok', '', '', 1, 7, 'o', 'r', 'upload.failure', { seq: '3' }]);
  assert.deepEqual(rows.at(-1), ['event', '', '', '', null, 8, 'o2', 'r2', 'api.call', {}]);
  const csv = toCsv(rows);
  assert.ok(csv.includes('\r\nevent,tiktok,,,1,7,o,r,upload.failure,"{""seq"":""3""}"\r\n'));
  assert.ok(csv.endsWith('\r\nevent,,,,,8,o2,r2,api.call,{}\r\n'));
});

test('exportBaseName: window, platform, type (dots as dashes) and a UTC stamp', () => {
  const at = new Date(Date.UTC(2026, 10, 29, 14, 5, 9, 999));
  assert.equal(exportBaseName({ platform: 'all', window: '24h', type: 'token.refresh' }, at), 'tocsin-24h-all-token-refresh-2026-11-29-14-05-09');
  assert.equal(exportBaseName({ platform: 'tiktok', window: '15m', type: 'all' }, at), 'tocsin-15m-tiktok-all-2026-11-29-14-05-09');
});

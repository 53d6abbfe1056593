import { execFileSync } from 'node:child_process';
import Redis from 'ioredis';
import { LIBRARY_SOURCE, functionName } from '../libs/engine/src/lua';
import { accountKeys, holdKey, streamKey } from '../libs/engine/src/keys';

const markers = [
  "if q * price > MAX then return { 'range' } end",
  'local wins, rate_room = load_windows(c, ARGV, nw, 15)',
  "local lots, hi, lo = load_lots(KEYS[2], now, mode ~= 'preview')",
  "if ARGV[7] ~= '1' and p.granted < q then",
  'if applies then apply(p, wins, ft, KEYS[3], kexp, KEYS[2], now) end',
  "if applies and mode == 'consume' then",
  "local record = table.concat(",
  "if mode ~= 'preview' then redis.call('SET'",
];
async function main() {
  const redis = new Redis('redis://127.0.0.1:6381/12');
  await redis.flushdb();
  const name = functionName('decide');
  const start = LIBRARY_SOURCE.indexOf(`redis.register_function('${name}'`);
  const end = LIBRARY_SOURCE.indexOf('end)', LIBRARY_SOURCE.indexOf("return window_reply({ 'ok'", start)) + 4;
  const body = LIBRARY_SOURCE.slice(start, end);
  let lib = LIBRARY_SOURCE.replace(/#!lua name=\S+/, '#!lua name=prof');
  const names: string[] = [];
  markers.forEach((m, i) => {
    const at = body.indexOf(m);
    if (at < 0) throw new Error(m);
    const lineEnd = body.indexOf('\n', at);
    let variant = body.slice(0, lineEnd + 1) + "if true then return {'stop'} end\n" + body.slice(lineEnd + 1);
    if (m.startsWith("if ARGV[7]") ) variant = body.slice(0, at) + "if true then return {'stop'} end\n" + body.slice(at);
    variant = variant.replace(`'${name}'`, `'prof_${i}'`);
    lib += '\n' + variant;
    names.push(`prof_${i}`);
  });
  {
    let v = body.replace("redis.call('XADD', KEYS[4], '*', 'usage', usage_json(", "local _j = (usage_json(");
    v = v.slice(0, v.indexOf("local d = {}")) + "if true then return {'stop'} end\n" + v.slice(v.indexOf("local d = {}"));
    lib += '\n' + v.replace(`'${name}'`, `'prof_json'`);
    names.push('prof_json');
    let x = body.replace("usage_json(did, ARGV[1], ARGV[2], ARGV[4], p.granted, p, cost, balance, now, 0, 0)", "string.rep('x', 380)");
    x = x.slice(0, x.indexOf("local d = {}")) + "if true then return {'stop'} end\n" + x.slice(x.indexOf("local d = {}"));
    lib += '\n' + x.replace(`'${name}'`, `'prof_xadd'`);
    names.push('prof_xadd');
  }
  lib = lib.replace(/redis.register_function\('sw_[a-z_]+_[0-9a-f]+'/g, (s) => s.replace("'sw_", "'prof_sw_"));
  await redis.call('FUNCTION', 'LOAD', 'REPLACE', lib);
  const nk = accountKeys('sb', 0);
  await redis.hset(nk.lots, 'l1', '9000000000000', '#l1', 'promo|10|0|1', 'l2', '9000000000000', '#l2', 'enterprise|20|0|1', 'l3', '9000000000000', '#l3', 'purchased|40|0|1');
  const did = `dec_p0_${'0'.repeat(32)}`;
  const idem = nk.idempotency('x').replace(/[^:]+$/, '__rand_int__');
  await redis.call('FUNCTION', 'LOAD', 'REPLACE', "#!lua name=calib\nredis.register_function('calib_noop', function(KEYS, ARGV) return 1 end)");
  const cpu = async () => { const i = await redis.info('cpu'); return Number(/used_cpu_user_main_thread:([\d.]+)/.exec(i)![1]) + Number(/used_cpu_sys_main_thread:([\d.]+)/.exec(i)![1]); };
  const best = new Map<string, number>();
  for (let round = 0; round < 3; round++) for (const fn of ['calib_noop', ...names, 'prof_' + name]) {
    await redis.config('RESETSTAT');
    const c0 = await cpu();
    execFileSync('redis-benchmark', ['-p', '6381', '--dbnum', '12', '-c', '4', '-n', '20000', '-r', '1000000000', '-q', 'FCALL', fn, '5', idem, nk.lots, nk.counters('f'), streamKey(0), holdKey(0, did),
      'sb', 'f', '1', '__rand_int__', 'fp', 'consume', '1', did, '1000', 'credits', '0', '60', '60', '2', '5h', '5', '18000', 'week', '10', '604800'], { encoding: 'utf8' });
    const line = (await redis.info('commandstats')).split('\n').find((l) => l.startsWith('cmdstat_fcall'))!;
    const us = ((await cpu()) - c0) * 1e6 / 20000;
    best.set(fn, Math.min(best.get(fn) ?? Infinity, us));
    void line;
    await redis.del(streamKey(0));
  }
  for (const [fn, us] of best) console.log(fn, us.toFixed(1));
  redis.disconnect();
}
main();

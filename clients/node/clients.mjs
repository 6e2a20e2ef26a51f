// Runs node-redis and ioredis, each with its default options, against the
// server at process.argv[2] (host:port): strings, a pipeline, MULTI/EXEC,
// WATCH, SCAN, INFO. Exits 1 naming the first check that fails.
import { createClient } from 'redis';
import Redis from 'ioredis';

const [host, port] = process.argv[2].split(':');
const fail = (what, got) => { console.error(`FAIL ${what}: ${JSON.stringify(got)}`); process.exit(1); };
const eq = (what, got, want) => { if (JSON.stringify(got) !== JSON.stringify(want)) fail(what, { got, want }); };

async function nodeRedis() {
  const c = createClient({ url: `redis://${host}:${port}` }); // node-redis 6: RESP3 by default
  c.on('error', (e) => fail('node-redis connection', String(e)));
  await c.connect();
  eq('node-redis SET', await c.set('node:a', '1'), 'OK');
  eq('node-redis GET', await c.get('node:a'), '1');
  eq('node-redis GET missing', await c.get('node:missing'), null);
  eq('node-redis INCR', await c.incr('node:a'), 2);
  eq('node-redis MGET', await c.mGet(['node:a', 'node:missing']), ['2', null]);
  eq('node-redis MULTI', await c.multi().set('node:b', 'x').incr('node:a').exec(), ['OK', 3]);
  const keys = [];
  for await (const batch of c.scanIterator({ MATCH: 'node:*' })) keys.push(...batch);
  eq('node-redis SCAN', keys.sort(), ['node:a', 'node:b']);
  eq('node-redis TYPE', await c.type('node:a'), 'string');
  await c.quit();
}

async function ioRedis() {
  const c = new Redis({ host, port: Number(port), lazyConnect: true, maxRetriesPerRequest: 0 });
  await c.connect();
  eq('ioredis SET', await c.set('io:a', 'v'), 'OK');
  eq('ioredis GET', await c.get('io:a'), 'v');
  eq('ioredis pipeline', await c.pipeline().incr('io:n').incr('io:n').exec(), [[null, 1], [null, 2]]);
  await c.watch('io:n');
  eq('ioredis WATCH/MULTI', await c.multi().incrby('io:n', 10).exec(), [[null, 12]]);
  const keys = await new Promise((resolve, reject) => {
    const found = [];
    c.scanStream({ match: 'io:*' }).on('data', (b) => found.push(...b)).on('end', () => resolve(found)).on('error', reject);
  });
  eq('ioredis SCAN', [...new Set(keys)].sort(), ['io:a', 'io:n']);
  if (!(await c.info('server')).includes('redis_version')) fail('ioredis INFO', 'no redis_version');
  // defineCommand: EVALSHA, and EVAL when the script is not cached yet.
  c.defineCommand('moveAmount', {
    numberOfKeys: 2,
    lua: "local a = tonumber(redis.call('GET', KEYS[1]) or '0'); redis.call('SET', KEYS[1], a - ARGV[1]); " +
      "return redis.call('INCRBY', KEYS[2], ARGV[1])",
  });
  await c.set('io:from', '10');
  eq('ioredis defineCommand', await c.moveAmount('io:from', 'io:to', 3), 3);
  eq('ioredis defineCommand again', await c.moveAmount('io:from', 'io:to', 3), 6);
  eq('ioredis defineCommand result', await c.get('io:from'), '4');
  await c.quit();
}

await nodeRedis();
await ioRedis();
console.log('ok');

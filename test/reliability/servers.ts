import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

// @ts-expect-error plain JavaScript helper shared with the demo
import { freePort } from '../../scripts/lib/local-redis.mjs';
import { tempDir } from '../helpers/env.js';

const free = freePort as () => Promise<number>;

export interface Server {
  port: number;
  child: ChildProcess;
  stop: () => Promise<void>;
}

/** redis-cli with `args`, its stdout; throws with stderr when it fails. */
export function redisCli(args: readonly string[]): string {
  const r = spawnSync('redis-cli', args, { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`redis-cli ${args.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** Starts redis-server with `args` and waits (bounded) until `ready` answers true. */
export async function startServer(
  args: readonly string[],
  port: number,
  ready: () => boolean,
): Promise<Server> {
  const child = spawn('redis-server', [...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.on('data', d => (err += d));
  for (let i = 0; !ready(); i++) {
    if (child.exitCode !== null || i > 200) {
      child.kill('SIGKILL');
      throw new Error(`redis-server ${args.join(' ')} did not start: ${err}`);
    }
    await new Promise(r => setTimeout(r, 50));
  }
  return {
    port,
    child,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise(r => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

export interface Pki {
  dir: string;
  ca: string;
  cert: string;
  key: string;
}

/** A throw-away CA and a server certificate for 127.0.0.1 (also used as client certificate). */
export function makePki(): Pki {
  const dir = tempDir('jtm-pki-');
  const p = (n: string): string => join(dir, n);
  const ssl = (args: string[]): void => {
    const r = spawnSync('openssl', args, { encoding: 'utf8', cwd: dir });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  };
  ssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=jtm-test-ca',
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.crt'),
  ]);
  writeFileSync(p('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  ssl([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    p('server.key'),
    '-out',
    p('server.csr'),
  ]);
  ssl([
    'x509',
    '-req',
    '-in',
    p('server.csr'),
    '-CA',
    p('ca.crt'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    p('ext.cnf'),
    '-out',
    p('server.crt'),
  ]);
  return { dir, ca: p('ca.crt'), cert: p('server.crt'), key: p('server.key') };
}

/** A TLS-only redis-server (`--port 0`); clients need not present a certificate unless `clientCerts` is 'yes'. */
export async function startTlsRedis(pki: Pki, clientCerts: 'optional' | 'yes' = 'optional'): Promise<Server> {
  const port = await free();
  const tlsCli = ['--tls', '--cacert', pki.ca, '-h', '127.0.0.1', '-p', String(port)];
  const server = await startServer(
    [
      '--port',
      '0',
      '--tls-port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--tls-cert-file',
      pki.cert,
      '--tls-key-file',
      pki.key,
      '--tls-ca-cert-file',
      pki.ca,
      '--tls-auth-clients',
      clientCerts,
      '--dir',
      pki.dir,
    ],
    port,
    () =>
      spawnSync(
        'redis-cli',
        [...tlsCli, ...(clientCerts === 'yes' ? ['--cert', pki.cert, '--key', pki.key] : []), 'PING'],
        { encoding: 'utf8' },
      ).stdout.trim() === 'PONG',
  );
  return server;
}

/** A plain redis-server; `setup` runs redis-cli commands once it answers (e.g. ACL SETUSER). */
export async function startPlainRedis(extra: readonly string[] = []): Promise<Server> {
  const port = await free();
  return startServer(
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra],
    port,
    () => spawnSync('redis-cli', ['-p', String(port), 'PING'], { encoding: 'utf8' }).stdout.trim() === 'PONG',
  );
}

/** Three masters with --cluster-enabled, joined with `redis-cli --cluster create`. */
export async function startCluster(): Promise<{ servers: Server[]; url: string; stop: () => Promise<void> }> {
  const servers: Server[] = [];
  for (let i = 0; i < 3; i++) {
    const dir = tempDir('jtm-cluster-');
    servers.push(
      await startPlainRedis([
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, 'nodes.conf'),
        '--dir',
        dir,
        '--cluster-node-timeout',
        '5000',
        // As docs/scaling.md advises: a master down stops its own shard only, not the whole site.
        '--cluster-require-full-coverage',
        'no',
      ]),
    );
  }
  const nodes = servers.map(s => `127.0.0.1:${s.port}`);
  redisCli(['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes']);
  const first = servers[0]!.port;
  for (let i = 0; i < 200; i++) {
    if (/cluster_state:ok/.test(redisCli(['-p', String(first), 'CLUSTER', 'INFO']))) break;
    await new Promise(r => setTimeout(r, 100));
  }
  return {
    servers,
    url: `redis+cluster://${nodes.join(',')}`,
    stop: async () => {
      await Promise.all(servers.map(s => s.stop()));
    },
  };
}

import { createBullBoard } from '@bull-board/api';
import { ExpressAdapter } from '@bull-board/express';
import type { NextFunction, Request, Response, Router } from 'express';

import type { JtmContext } from '../context.js';
import { JtmError, TaskNotFoundError, toError } from '../errors.js';
import { taskIdOfText } from '../tasks/job-data.js';
import { killTask } from '../tasks/kill-task.js';
import { metricsHandler } from '../metrics/serve-metrics.js';
import { esc, FAVICON_SVG, page } from '../http/html.js';
import { guardedApp } from '../http/guarded-app.js';
import { listenAt } from '../http/listen.js';
import { answerWhileRedisDown } from '../http/redis-ready.js';
import { checkExposure, sameOriginOnly, sameOriginWrites, type Credentials } from '../http/auth.js';
import { registerPoolPage } from './pool-page.js';
import { QueueSync } from './queue-sync.js';
import { registerTaskLive } from './task-live.js';
import { lookupTask, listWorkers, taskPage, workersPage } from './views.js';

export interface DashboardOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Retry, clean, kill: off unless asked for. */
  allowActions: boolean;
  credentials?: Credentials;
  /** How often the pool registry is read for queues to add or remove. */
  pollMs?: number;
}

export interface RunningDashboard {
  url: string;
  close(): Promise<void>;
}

const QUEUES_PATH = '/queues';

/**
 * bull-board with one queue per pool, plus what it lacks: live workers and a task lookup (record,
 * history, resource samples). Read-only unless `allowActions`; beyond loopback only with credentials,
 * which, when set, guard every route.
 */
export async function startDashboard(ctx: JtmContext, opts: DashboardOptions): Promise<RunningDashboard> {
  checkExposure(opts.host, opts.credentials);
  const log = ctx.logger.child({ component: 'dashboard' });
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(QUEUES_PATH);
  const board = createBullBoard({
    queues: [],
    // @bull-board/express 9.10.1 ships its own copy of @bull-board/api 9.10.1; the types differ only by origin.
    serverAdapter: serverAdapter as unknown as Parameters<typeof createBullBoard>[0]['serverAdapter'],
    options: {
      uiConfig: {
        boardTitle: 'JTM',
        miscLinks: [
          { text: 'Workers', url: '/workers' },
          { text: 'Task lookup', url: '/task' },
        ],
      },
    },
  });
  const sync = new QueueSync(ctx, board, { readOnly: !opts.allowActions });

  const app = guardedApp(opts.host, opts.credentials, ctx.logger, ctx.config.logRepeatIntervalMs);
  app.use(sameOriginWrites);
  app.use(answerWhileRedisDown(ctx));
  app.get('/', (_req, res) => res.redirect(QUEUES_PATH));
  app.get('/favicon.ico', (_req, res) =>
    res.type('image/svg+xml').set('Cache-Control', 'max-age=86400').send(FAVICON_SVG),
  );
  app.use(QUEUES_PATH, sameOriginOnly, serverAdapter.getRouter() as Router);
  app.get('/workers', async (_req, res) => {
    res.type('html').send(await workersPage(ctx, ''));
  });
  app.get('/api/workers', async (_req, res) => {
    res.json(await listWorkers(ctx));
  });
  app.get('/metrics', metricsHandler(ctx));
  registerTaskLive(app, ctx, opts.allowActions);
  registerPoolPage(app, ctx);
  app.get('/api/pools', (_req, res) => {
    res.json(sync.pools);
  });
  app.get('/task', async (req, res) => {
    const raw = typeof req.query['id'] === 'string' ? req.query['id'].trim() : '';
    const id = raw === '' ? undefined : taskIdOfText(raw);
    const { status, html } = await taskPage(ctx, '', id, opts.allowActions);
    res.status(status).type('html').send(html);
  });
  app.get('/api/tasks/:id', async (req, res) => {
    const id = taskIdOfText(req.params['id'] ?? '');
    const found = await lookupTask(ctx, id);
    if (!found) throw new TaskNotFoundError(id);
    res.json(found);
  });
  const kill = async (req: Request, res: Response, html: boolean): Promise<void> => {
    if (!opts.allowActions) {
      res
        .status(403)
        .json({ error: 'ACTIONS_DISABLED', message: 'start the dashboard with --allow-actions' });
      return;
    }
    const id = taskIdOfText(String(req.params['id'] ?? ''));
    const result = await killTask(ctx, id, 15_000);
    log.info({ task: id, result }, 'kill from the dashboard');
    if (html) res.redirect(303, `/task?id=${id}`);
    else res.json(result);
  };
  app.post('/api/tasks/:id/kill', (req, res) => kill(req, res, false));
  app.post('/task/:id/kill', (req, res) => kill(req, res, true));
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = toError(err);
    const status = httpStatusOf(e);
    if (status >= 500) log.error({ err: e }, 'dashboard request failed');
    const code = e instanceof JtmError ? e.code : 'INTERNAL';
    // A page asked for by a person gets a page; the API, its JSON.
    if (req.originalUrl.startsWith('/api/') || req.originalUrl.startsWith(`${QUEUES_PATH}/api/`))
      res.status(status).json({ error: code, message: e.message });
    else
      res
        .status(status)
        .type('html')
        .send(page(`Error ${status}`, `<p>${esc(e.message)}</p>`, ''));
  });

  const listening = await listenAt(app, opts.host, opts.port, 'dashboard');
  // Polling starts once the port is ours: a dashboard that cannot listen must not keep the process alive.
  try {
    await sync.start(opts.pollMs ?? 2000);
  } catch (err) {
    listening.server.close();
    throw err;
  }
  const url = `${listening.origin}/`;
  log.info({ url, allowActions: opts.allowActions, auth: Boolean(opts.credentials) }, 'dashboard listening');
  return {
    url,
    close: async () => {
      await listening.close();
      await sync.stop();
    },
  };
}

/** HTTP status of an error: JTM's codes say whose fault it is (the request's, or a missing task or pool). */
export function httpStatusOf(err: Error): number {
  if (!(err instanceof JtmError)) return 500;
  switch (err.code) {
    case 'INVALID_INPUT':
      return 400;
    case 'TASK_NOT_FOUND':
    case 'POOL_NOT_FOUND':
      return 404;
    case 'REDIS_UNAVAILABLE':
      return 503;
    default:
      return 500;
  }
}

import type { JtmContext } from '../context.js';
import { closeConnection } from '../redis/connection.js';
import { toError } from '../errors.js';
import { provisionDynamicPools } from './provision.js';

/**
 * Provisions Slurm pools as soon as a submit announces work for a dynamic pool, instead of at the next
 * sweep: a new pool's first allocation is requested within milliseconds, not up to a sweep interval later.
 * Requests that arrive while a pass runs are folded into one more pass. (Several managers may all hear the
 * announcement; provisioning takes a Redis lock, so one of them does it and it never over-submits.)
 */
export class ProvisionOnDemand {
  private running = false;
  private again = false;
  private sub: ReturnType<JtmContext['redis']['duplicate']> | undefined;

  constructor(private readonly ctx: JtmContext) {}

  async start(): Promise<void> {
    const sub = this.ctx.redis.duplicate();
    sub.on('error', () => {});
    sub.on('message', () => this.request());
    await sub.subscribe(this.ctx.keys.provisionRequests);
    this.sub = sub;
  }

  request(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void (async () => {
      do {
        this.again = false;
        try {
          const report = await provisionDynamicPools(this.ctx, Date.now());
          if (report.submitted > 0)
            this.ctx.logger.info({ submitted: report.submitted }, 'provisioned on demand');
        } catch (err) {
          this.ctx.logger.warn({ err: toError(err) }, 'on-demand provisioning failed');
        }
      } while (this.again);
      this.running = false;
    })();
  }

  async stop(): Promise<void> {
    const sub = this.sub;
    this.sub = undefined;
    if (sub) await closeConnection(sub);
  }
}

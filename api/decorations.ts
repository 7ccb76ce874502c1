import { XamalError } from '../core/index.ts';
import type { ObjectStore } from '../store/store.ts';
import type { Scope } from './auth.ts';
import type { BoardQueues } from './board.ts';
import type { DownloadSettings } from './downloads.ts';
import type { ServedCliPackage } from './cli-package.ts';
import type { FarmPublicKeys } from '../core/contracts/attestation.ts';
import type { MetricsSource } from './metrics.ts';
import type { GithubHooks } from './schemas/github.ts';
import type { ArtifactService } from './services/artifacts.ts';
import type { BuildService } from './services/builds.ts';
import type { DeliveryLedger } from './services/deliveries.ts';
import type { HealthService } from './services/health.ts';
import type { ResolveService } from './services/resolve.ts';

/** The services buildApp decorates the app with (`app.services`); route plugins read them from there. */
export interface AppServices {
  health: HealthService;
  artifacts: ArtifactService;
  resolve: ResolveService;
  /** Present when the API can reach the build queues. */
  builds?: BuildService;
  /** Where uploaded source archives go (the artifact store). */
  sourceStore?: ObjectStore;
  /** Webhook deliveries already taken, shared by the farm's API processes (default: this process's memory). */
  deliveries?: DeliveryLedger;
  /** The build queues as operators see them: counts for /metrics, adapters for /admin/queues. */
  queues?: MetricsSource & { boardAdapters(): BoardQueues };
}

/** The settings routes read (`app.settings`), defaults applied. */
export interface AppSettings {
  downloads: DownloadSettings;
  /** Repositories whose releases start builds (POST /v1/hooks/github). */
  githubHooks?: GithubHooks;
  /** How long a webhook delivery id is remembered (s). */
  githubDeliveryTtlSeconds: number;
  /** Most bytes one log response or stream carries. */
  maxLogResponseBytes: number;
  /** Largest source archive POST /v1/sources takes. */
  maxSourceBytes: number;
  /** Log streams (`?follow=1`) one token may hold open at once in this process. */
  maxStreamsPerToken: number;
  /** The xamal package `GET /v1/cli` serves (XAMAL_CLI_PACKAGE). */
  cliPackage?: ServedCliPackage;
  /** What GET /v1/keys answers: the farm's public signing keys. */
  publicKeys: FarmPublicKeys;
}

declare module 'fastify' {
  interface FastifyInstance {
    services: AppServices;
    settings: AppSettings;
  }
  interface FastifyContextConfig {
    /** Route needs no token. */
    public?: boolean;
    /** Scope a token needs for this route (default read). */
    scope?: Scope;
    /**
     * Level of the access line for answers below 400 (default info): hot read-only lookups and
     * probes use debug, so a busy farm's log holds its builds, deploys' resolves and every error.
     */
    accessLog?: 'debug' | 'info';
  }
}

/** An optional service a route plugin needs: app.ts registers that plugin only when the service is there. */
export function required<K extends keyof AppServices>(services: AppServices, name: K): NonNullable<AppServices[K]> {
  const service = services[name];
  if (!service) throw new XamalError('internal', `api: routes registered without services.${name}`);
  return service as NonNullable<AppServices[K]>;
}

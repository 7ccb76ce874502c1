import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { builderConfig } from '../../../builder/config.ts';
import { buildImage } from '../../../builder/images/build.ts';
import { hostArch, imageBuildDeps } from '../../../builder/images/context.ts';
import { farmClient } from '../../../deployer/farm-client.ts';
import { s3Store } from '../../../store/s3.ts';
import { commitFiles, exampleRepo, git } from '../../../testkit/example-repo.ts';
import { upTestNetns, type TestNetns } from '../../../testkit/egress/netns.ts';
import { wireFarm, type WiredFarm } from '../../../testkit/farm.ts';
import { services, testPrefix } from '../../../testkit/integration.ts';

/** Elixir (1.10+) that a project's mix.exs runs while Mix evaluates it: every attempt prints one line. */
function probe(module: string, who: string, o: { ports: Record<string, number>; dockerSocket: string; other: string; redisKey: string }): string {
  const targets = Object.entries(o.ports).map(([label, port]) => `{"${label}", ${port}}`).join(', ');
  return `
defmodule ${module} do
  def tcp(addr, port) do
    case :gen_tcp.connect(addr, port, [:binary, active: false], 3000) do
      {:ok, s} ->
        :gen_tcp.send(s, "SET ${o.redisKey} owned\\r\\n")
        :gen_tcp.close(s)
        "CONNECTED"
      {:error, e} -> "failed #{inspect(e)}"
    end
  end

  def proxied(url) do
    {out, _} = System.cmd("git", ["ls-remote", url], stderr_to_stdout: true)
    out |> String.split("\\n", trim: true) |> List.last() |> to_string()
  end

  def run do
    for {label, port} <- [${targets}] do
      IO.puts("hostile[${who}]: direct #{label} #{tcp({127, 0, 0, 1}, port)}")
      IO.puts("hostile[${who}]: proxied #{label} #{proxied("http://127.0.0.1:#{port}/x.git")}")
    end
    IO.puts("hostile[${who}]: direct docker #{tcp({:local, "${o.dockerSocket}"}, 0)}")
    IO.puts("hostile[${who}]: direct other #{tcp(:binary.bin_to_list("${o.other}") |> :inet.parse_address() |> elem(1), 80)}")
    IO.puts("hostile[${who}]: proxied other #{proxied("http://${o.other}/allowed_dep.git")}")
  end
end

${module}.run()
`;
}

const depMixExs = (probeCode: string) => `${probeCode}
defmodule AllowedDep.MixProject do
  use Mix.Project
  def project, do: [app: :allowed_dep, version: "0.1.0", elixir: "~> 1.10", deps: []]
  def application, do: []
end
`;

/** hello's mix.exs with a git dependency on the allowed address and the probe in front. */
const appMixExs = (probeCode: string, depUrl: string) => `${probeCode}
defmodule Hello.MixProject do
  use Mix.Project
  def project do
    [
      app: :hello,
      version: "0.1.0",
      elixir: "~> 1.10",
      deps: [{:allowed_dep, git: "${depUrl}", branch: "main"}],
      releases: [hello: [include_erts: true, include_executables_for: [:unix]]]
    ]
  end
  def application, do: [extra_applications: [:logger], mod: {Hello.Application, []}]
end
`;

/** Issue 18 item 1: what a build's deps step can reach. */
describe('the deps step reaches the network only through the egress proxy', () => {
  let tmp: string | undefined;
  let netns: TestNetns | undefined;
  let farm: WiredFarm | undefined;
  let redis: Redis | undefined;
  afterAll(async () => {
    await farm?.close();
    await netns?.close();
    redis?.disconnect();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it(
    'a hostile mix.exs and its dependency\'s reach none of Redis, the API, the registry, S3, the Docker socket or an address outside the allow list; the allowed git dependency is fetched',
    { timeout: 600_000 },
    async () => {
      const ep = services();
      const arch = hostArch();
      tmp = await mkdtemp(join(tmpdir(), 'xamal-egress-'));
      const www = join(tmp, 'www');
      await mkdir(www, { recursive: true });
      netns = await upTestNetns('eg', www);
      const prefix = testPrefix('egress');
      const token = randomBytes(16).toString('hex');
      const store = s3Store({ ...ep.s3, prefix: `${prefix}/` });
      farm = await wireFarm({
        settings: { redisUrl: ep.redisUrl, prefix },
        store,
        dockerSocket: ep.dockerSocket,
        cacheDir: join(tmp, 'cache'),
        workRoot: join(tmp, 'work'),
        token,
        host: '127.0.0.1',
        concurrency: 1,
        depsAllow: [{ host: netns.allowed, port: 80 }],
      });
      const port = (u: string) => Number(new URL(u).port);
      const ports = { redis: port(ep.redisUrl), api: port(farm.url), registry: Number(ep.registry.split(':')[1]), s3: port(ep.s3.endpoint) };
      const redisKey = `xamal-hostile-${randomBytes(4).toString('hex')}`;
      const common = { ports, dockerSocket: ep.dockerSocket, other: netns.other, redisKey };

      // The dependency, served over git's dumb HTTP from the allowed address.
      const depDir = join(tmp, 'allowed_dep');
      await mkdir(join(depDir, 'lib'), { recursive: true });
      await writeFile(join(depDir, 'lib', 'allowed_dep.ex'), 'defmodule AllowedDep do\n  def hello, do: :allowed\nend\n');
      await writeFile(join(depDir, 'mix.exs'), depMixExs(probe('HostileDepProbe', 'dep', common)));
      git(depDir, 'init', '-q', '-b', 'main');
      git(depDir, 'add', '-A');
      git(depDir, 'commit', '-q', '-m', 'dep');
      git(tmp, 'clone', '-q', '--bare', depDir, join(www, 'allowed_dep.git'));
      git(join(www, 'allowed_dep.git'), 'update-server-info');

      const appDir = join(tmp, 'hostile');
      const { url } = await exampleRepo('hello', appDir);
      const commit = await commitFiles(appDir, 'hostile', { 'mix.exs': appMixExs(probe('HostileProbe', 'app', common), `http://${netns.allowed}/allowed_dep.git`) });

      redis = new Redis(ep.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
      const catalog = async () => (await fetch(`http://${ep.registry}/v2/_catalog`)).text();
      const catalogBefore = await catalog();

      const image = await buildImage(imageBuildDeps({ ...builderConfig(), dockerSocket: ep.dockerSocket, registry: ep.registry }, () => {}), { suite: 'bookworm', arch, flavour: 'builder' });
      const client = farmClient(farm.url, token);
      const submitted = await client.submit({ app: 'hello', source: { git: url, commit }, targets: [image.entry.tuple!] });
      const id = submitted.body.builds[0]!.id;
      let state = '';
      for (const end = Date.now() + 540_000; Date.now() < end; await new Promise((r) => setTimeout(r, 500))) {
        state = (await client.status(id)).state;
        if (state === 'completed' || state === 'failed') break;
      }
      const log = await client.logs(id);
      const lines = log.split('\n').filter((l) => l.includes('hostile['));
      const attempts = lines.length;
      const connected = lines.filter((l) => l.includes('CONNECTED'));
      const refusedByProxy = lines.filter((l) => /proxied .*403/.test(l));
      console.log(`reliability: hostile deps step → ${attempts} attempts (app and dependency), ${connected.length} connected, ${refusedByProxy.length} refused by the proxy (403)`);

      expect(state, log.slice(-3000)).toBe('completed');
      // The dependency was fetched through the proxy from the allowed address, and its mix.exs ran.
      expect(log).toMatch(/allowed_dep/);
      expect(lines.some((l) => l.startsWith('hostile[dep]'))).toBe(true);
      expect(connected).toEqual([]);
      for (const who of ['app', 'dep']) {
        for (const label of [...Object.keys(ports), 'other']) {
          expect(lines.filter((l) => l.startsWith(`hostile[${who}]: direct ${label} failed`)).length, `${who} ${label}`).toBeGreaterThan(0);
          expect(lines.filter((l) => l.startsWith(`hostile[${who}]: proxied ${label}`) && l.includes('403')).length, `${who} proxied ${label}`).toBeGreaterThan(0);
        }
        expect(lines.some((l) => l.startsWith(`hostile[${who}]: direct docker failed`))).toBe(true);
      }
      expect(await redis.exists(redisKey)).toBe(0);
      expect(await catalog()).toBe(catalogBefore);
      expect(await store.list(redisKey)).toEqual([]);
    },
  );
});

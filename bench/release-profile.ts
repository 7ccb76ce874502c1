/**
 * Where `mix release` spends its time on examples/shop (issue 20, P2's compile step), measured in
 * the builder container the worker's plan gives the compile step (bench/raw-build.ts), bookworm
 * x86_64, with nothing left to compile (deps and assets ran first, as in a warm farm build):
 *
 * - the container alone (`true`), the BEAM alone (`elixir -e ''`), Mix with the project loaded and
 *   its deps checked (`mix run --no-compile --no-start -e ''`);
 * - `mix release` as the farm runs it, wall time, and with `MIX_DEBUG=1` (Mix's time per task);
 * - what the worker adds after the step: its work directory measured against the disk limit;
 * - its parts, one after another in one VM (`mix run` of a script calling Mix.Release's functions
 *   the release task calls): reading the apps (from_config!), the ERTS copy, each application's copy
 *   with its beams stripped, the same copy without stripping, the boot scripts (systools), sys.config,
 *   and the whole task again in that VM (no VM or Mix start).
 *
 *   flock /tmp/xamal-int.lock npx tsx bench/release-profile.ts [--runs 3] --lock-held
 *
 * Prints each measure's median and min–max over the runs.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LocalExecutor, runChecked } from '../core/index.ts';
import type { ContainerSpec } from '../builder/docker.ts';
import { diskUsage } from '../builder/disk.ts';
import { cells, dockerCli, say, TUPLES } from './farm.ts';
import { dockerRunArgs, rawCheckout, rawSteps } from './raw-build.ts';
import { engineLockHeldByCaller, rawProxy, shopSources, withPairFarm } from './shop.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, 'lock-held': { type: 'boolean', default: false } } });
const runs = Number(values.runs);
engineLockHeldByCaller(values['lock-held']);

/** Times Mix.Release's parts one after another; each line `PROFILE <what> <ms>`. */
const PROFILE_EXS = String.raw`
t = fn label, f ->
  {us, r} = :timer.tc(f)
  IO.puts("PROFILE #{label} #{Float.round(us / 1000, 1)}")
  r
end
config = Mix.Project.config()
t.("compile-noop", fn -> Mix.Task.run("compile", []) end)
path = "/build/out/prof"
File.rm_rf!(path)
release = t.("from_config", fn -> Mix.Release.from_config!(:shop, config, path: path, overwrite: true, quiet: true) end)
IO.puts("INFO apps #{map_size(release.applications)} erts #{release.erts_version} strip #{inspect(release.options[:strip_beams])}")
t.("copy_erts", fn -> Mix.Release.copy_erts(release) end)
per = for app <- Map.keys(release.applications) do
  {us, _} = :timer.tc(fn -> Mix.Release.copy_app(release, app) end)
  {app, us}
end
IO.puts("PROFILE copy_apps_stripped #{Float.round(Enum.sum(Enum.map(per, &elem(&1, 1))) / 1000, 1)}")
for {app, us} <- Enum.sort_by(per, &(-elem(&1, 1))) |> Enum.take(8), do: IO.puts("INFO app #{app} #{Float.round(us / 1000, 1)} ms")
beams = Path.wildcard(Path.join(path, "lib/*/ebin/*.beam"))
IO.puts("INFO beams #{length(beams)} bytes #{beams |> Enum.map(&File.stat!(&1).size) |> Enum.sum()}")
File.rm_rf!(Path.join(path, "lib"))
plain = %{release | options: Keyword.put(release.options, :strip_beams, false)}
t.("copy_apps_unstripped", fn -> for app <- Map.keys(plain.applications), do: Mix.Release.copy_app(plain, app) end)
vp = release.version_path
File.mkdir_p!(vp)
try do
  t.("boot_scripts", fn ->
    for {boot, modes} <- release.boot_scripts do
      :ok = Mix.Release.make_boot_script(release, Path.join(vp, Atom.to_string(boot)), modes, [])
    end
  end)
rescue
  e -> IO.puts("INFO boot_scripts failed: #{Exception.message(e)}")
end
try do
  t.("sys_config", fn -> Mix.Release.make_sys_config(release, [], Path.join(vp, "sys.config")) end)
rescue
  e -> IO.puts("INFO sys_config failed: #{Exception.message(e)}")
end
File.rm_rf!(path)
t.("release_task_in_vm", fn -> Mix.Task.rerun("release", ["shop", "--overwrite", "--quiet", "--path", "/build/out/prof2"]) end)
File.rm_rf!("/build/out/prof2")
`;

const exec = new LocalExecutor();
const samples = new Map<string, number[]>();
const add = (what: string, ms: number) => samples.set(what, [...(samples.get(what) ?? []), ms]);

/** One `docker run` of `spec` with `cmd` (and `env`); its wall time recorded as `what`; its output. */
async function run(socket: string, spec: ContainerSpec, what: string, cmd: string[], env: Record<string, string> = {}): Promise<string> {
  const t0 = performance.now();
  const r = await runChecked(exec, dockerCli(socket, dockerRunArgs({ ...spec, cmd, env: { ...spec.env, ...env } })));
  add(what, performance.now() - t0);
  return r.stdout + r.stderr;
}

const tmp = await mkdtemp(join(tmpdir(), 'xamal-bench-release-'));
const s = await shopSources(tmp);
try {
  await withPairFarm(join(tmp, 'farm'), s.allow, async (farm) => {
    const proxy = await rawProxy(join(tmp, 'proxy'), s.allow);
    try {
      const plan = await rawCheckout({ dockerSocket: farm.dockerSocket, app: 'shop', url: s.url, commit: s.commit, tuple: TUPLES.bookworm, env: s.env, assets: true, dir: join(tmp, 'work') });
      const first = await rawSteps(farm.dockerSocket, plan, ['deps', 'assets', 'compile'], proxy.url);
      say(`deps, assets, first release: ${JSON.stringify(first)}`);
      await writeFile(join(plan.dirs.home, 'profile.exs'), PROFILE_EXS);
      // What the worker adds after each step: the work directory measured against the disk limit (builder/disk.ts).
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        const bytes = await diskUsage(join(tmp, 'work'));
        add('worker: the work directory measured (diskUsage)', performance.now() - t0);
        if (i === 0) say(`work directory: ${bytes} bytes, ${(await runChecked(exec, { argv: ['sh', '-c', 'find "$1" | wc -l', 'sh', join(tmp, 'work')] })).stdout.trim()} entries`);
      }
      const spec = plan.containers.compile;
      for (let i = 0; i < runs; i++) {
        await run(farm.dockerSocket, spec, 'container (true)', ['true']);
        await run(farm.dockerSocket, spec, 'BEAM (elixir -e)', ['elixir', '-e', '']);
        await run(farm.dockerSocket, spec, 'Mix + project + deps check (mix run --no-compile --no-start)', ['mix', 'run', '--no-compile', '--no-start', '-e', '']);
        await run(farm.dockerSocket, spec, 'mix release (the farm\'s command)', spec.cmd);
        const debug = await run(farm.dockerSocket, spec, 'mix release, MIX_DEBUG=1', spec.cmd, { MIX_DEBUG: '1' });
        for (const m of debug.matchAll(/<- Ran mix task (\S+) in (\d+)ms/g)) add(`MIX_DEBUG task ${m[1]}`, Number(m[2]));
        if (i === 0) say(debug.split('\n').filter((l) => /mix task|Ran /.test(l)).join('\n'));
        const prof = await run(farm.dockerSocket, spec, 'profile script (mix run)', ['mix', 'run', '--no-compile', '--no-start', '/build/home/profile.exs']);
        for (const m of prof.matchAll(/^PROFILE (\S+) ([\d.]+)$/gm)) add(`part ${m[1]}`, Number(m[2]));
        if (i === 0) for (const l of prof.split('\n').filter((x) => x.startsWith('INFO'))) say(l);
      }
    } finally {
      proxy.close();
    }
  });
} finally {
  await s.close();
  await rm(tmp, { recursive: true, force: true });
}
for (const [what, xs] of samples) console.log(`| ${what} | ${cells(xs, (x) => `${Math.round(x)} ms`)} |`);
process.exit(0);

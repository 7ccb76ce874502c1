// The example-app repositories live in testhosts/ so benchmarks share them (bench/ never imports test/).
export { cryptoHelloRepo, exampleRepo, git, helloRepo } from '../../testhosts/example-repo.ts';

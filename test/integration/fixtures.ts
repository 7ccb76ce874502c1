// The example-app repositories live in testkit/ so benchmarks share them (bench/ never imports test/).
export { cryptoHelloRepo, exampleRepo, git, helloRepo } from '../../testkit/example-repo.ts';

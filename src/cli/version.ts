/**
 * `moc --version`: the package version, Node, the Dawn flags the engine was created with and
 * what the adapter exposes (features, the ones the engine uses, cooperative-matrix shapes), so a
 * bench log or a bug report says which kernels could run.
 */
import pkg from '../../package.json' with { type: 'json' };
import { Engine } from '../engine/engine.ts';
import { dawnFlags, nodeGpu } from '../engine/host-node.ts';

export async function run(): Promise<number> {
  console.log(`moc-studio ${pkg.version} (node ${process.versions.node})`);
  console.log(`dawn flags: ${dawnFlags().join(' ')}`);
  const eng = await Engine.create(await nodeGpu());
  try {
    for (const line of eng.capabilities()) console.log(line);
  } finally {
    eng.destroy();
  }
  return 0;
}

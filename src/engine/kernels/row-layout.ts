/**
 * How the row kernels (norm, softmax) spread rows over invocations; the chosen layout's WGSL
 * (row_index, row_first, row_step, row_reduce) is prepended to the kernel's source.
 * - 'workgroup' (GPUs): one workgroup per row, a tree reduction in workgroup memory
 *   (shaders/row-reduce.wgsl).
 * - 'invocation' (SwiftShader): one invocation per row, no workgroup memory or barriers
 *   (shaders/row-serial.wgsl); on the CPU a barrier costs far more than a row's arithmetic.
 */
import reduceSource from '../../../shaders/row-reduce.wgsl?raw';
import serialSource from '../../../shaders/row-serial.wgsl?raw';
import { grid2d, type Engine } from '../engine.ts';
import { isSwiftShader } from './adapters.ts';

export type RowLayout = 'workgroup' | 'invocation';

/** Rows per workgroup in the 'invocation' layout. */
const ROWS_PER_WORKGROUP = 64;

/** The layout used when none is given: 'invocation' on SwiftShader, else 'workgroup'. */
export function rowLayout(eng: Engine): RowLayout {
  return isSwiftShader(eng.adapter) ? 'invocation' : 'workgroup';
}

export interface RowDispatch {
  /** WGSL to prepend to the kernel's source. */
  source: string;
  /** The WG override: invocations per row (a power of two from 32 to 256, no more than the row needs) or rows per workgroup. */
  wg: number;
  groups: [number, number];
}

/** Source, workgroup size and grid for `rows` rows of `dim` elements in `layout`. */
export function rowDispatch(layout: RowLayout, rows: number, dim: number): RowDispatch {
  if (layout === 'invocation')
    return { source: serialSource, wg: ROWS_PER_WORKGROUP, groups: grid2d(Math.ceil(rows / ROWS_PER_WORKGROUP)) };
  let wg = 32;
  while (wg < 256 && wg < dim) wg *= 2;
  return { source: reduceSource, wg, groups: grid2d(rows) };
}

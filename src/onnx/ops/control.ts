// Control flow: Loop-21.

import { graphBuild } from '../../errors.js';
import type { Graph, Value } from '../graph.js';
import type { Shape } from '../dims.js';
import { expectDType } from './check.js';

/**
 * Loop-21 with a trip count and no early exit. `body(iteration, carried)` builds the body graph
 * (it may read any value of the enclosing graphs) and returns the next carried values, in order,
 * whose dtypes must match; `resultShapes` states the shapes the carried values have after the loop.
 */
export function loop(graph: Graph, tripCount: Value, carried: readonly Value[], resultShapes: readonly Shape[], body: (iteration: Value, carried: readonly Value[]) => readonly Value[]): Value[] {
  expectDType('Loop', tripCount, ['int64']);
  const name = graph.reserveNodeName('Loop');
  const sub = graph.subgraph(`${name}/body`);
  const iteration = sub.input(`${name}/iteration`, 'int64', []);
  const condIn = sub.input(`${name}/cond_in`, 'bool', []);
  // Dims that change across iterations get a fresh symbol inside the body.
  const inner = carried.map((c, i) =>
    sub.input(
      `${name}/carried_in_${i}`,
      c.dtype,
      c.shape.map((d, j) => ((resultShapes[i]?.[j] ?? d) === d ? d : `${name}_c${i}_d${j}`)),
    ),
  );
  graph.buildInto(sub, () => {
    const next = body(iteration, inner);
    if (next.length !== carried.length) throw graphBuild(name, `body returned ${next.length} values for ${carried.length} carried`);
    sub.output(condIn, `${name}/cond_out`);
    next.forEach((v, i) => {
      if (v.dtype !== carried[i]!.dtype) throw graphBuild(name, `carried value ${i}: body returns ${v.dtype}, loop carries ${carried[i]!.dtype}`);
      sub.output(v, `${name}/carried_out_${i}`);
    });
  });
  const keepGoing = graph.constant('bool', [], [1]);
  return graph.node('Loop', [tripCount, keepGoing, ...carried], {
    outputs: carried.map((c, i) => ({ dtype: c.dtype, shape: resultShapes[i] ?? c.shape })),
    attributes: { body: sub },
    name,
  });
}

/**
 * Cost estimate for a plain (unpaginated) list field: the number of items it usually holds times the
 * cost of one. Used by lists that stay small (a queue's agents, an extension's devices).
 */
export const listComplexity =
  (expectedItems: number) =>
  ({ childComplexity }: { childComplexity: number }): number =>
    1 + childComplexity * expectedItems;

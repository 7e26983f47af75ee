/** x86-64 micro-architecture levels a kernel is compiled for (clang `-march`). */
export type Target = 'x86-64' | 'x86-64-v3' | 'x86-64-v4';

export const TARGETS: readonly Target[] = ['x86-64', 'x86-64-v3', 'x86-64-v4'];

/** Targets a host at `level` can run: its own level and every lower one. */
export function runnableTargets(level: Target | null): Target[] {
  if (level === null) return [];
  return TARGETS.slice(0, TARGETS.indexOf(level) + 1);
}

/*
 * registry.h: the model registry's pure functions (registry.c).
 *
 * The registry keeps its state in tables (sql/install/40_registry.sql);
 * registry.c holds the lifecycle graph and the arithmetic.
 */
#ifndef REGISTRY_H
#define REGISTRY_H

/* Number of values of tforge.deployment_state. */
#define REGISTRY_NSTATES 7

/* Nearest-rank percentile p (0..100) of n > 0 values; sorts values in place. */
extern double RegistryPercentile(double *values, int n, double p);

#endif							/* REGISTRY_H */

/*
 * tforge.h: what the components of tforge share.
 *
 * Each component that registers GUCs or hooks exposes one Init function,
 * called once from _PG_init in tforge.c.
 */
#ifndef TFORGE_H
#define TFORGE_H

#include "postgres.h"

/* tau.c: EMA of task runtimes, GUCs tforge.ema_lambda and tforge.sla_multiplier */
extern void TauInit(void);

/* learn.c: runtime profiles and estimation, tforge.learning_* and profile GUCs */
extern void LearnInit(void);

#endif							/* TFORGE_H */

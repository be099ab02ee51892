/*
 * learn.c: runtime profiles and estimation (issue 4).
 */
#include "postgres.h"

#include "tforge.h"

void
LearnInit(void)
{
}

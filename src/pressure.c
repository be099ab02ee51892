/*
 * pressure.c: the governor's pressure sources outside the database, read
 * from files the kernel provides: cgroup v2 or v1 memory, Linux PSI, and
 * the resident memory of the postmaster and its children. Each returns a
 * fraction (1 = at the limit), or NaN when the source is absent; none
 * raises an error. Called by the worker (governor.c) once per pass.
 */
#include "postgres.h"

#include <dirent.h>
#include <math.h>

#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/float.h"

#include "governor.h"

/* The first number in a file, or -1 (absent, "max" or unreadable). */
static double
ReadNumberFile(const char *path)
{
	FILE	   *f = AllocateFile(path, "r");
	char		buf[64];
	double		v = -1;

	if (f == NULL)
		return -1;
	if (fgets(buf, sizeof(buf), f) != NULL && buf[0] >= '0' && buf[0] <= '9')
		v = strtod(buf, NULL);
	FreeFile(f);
	return v;
}

/*
 * cgroup memory usage / limit, NaN without a limit. The process's cgroup
 * (from /proc/self/cgroup) under the mount point, then its ancestors up to
 * the mount's root (a namespaced container sees its own cgroup as root):
 * the first with a limit counts. v2 files first, then v1's.
 */
double
CgroupPressure(void)
{
	static const char *const layouts[2][3] = {
		{"/sys/fs/cgroup", "memory.current", "memory.max"},
		{"/sys/fs/cgroup/memory", "memory.usage_in_bytes", "memory.limit_in_bytes"},
	};
	char		paths[2][MAXPGPATH] = {"", ""};
	FILE	   *f = AllocateFile("/proc/self/cgroup", "r");
	char		line[MAXPGPATH];

	if (f != NULL)
	{
		while (fgets(line, sizeof(line), f) != NULL)
		{
			char	   *ctl = strchr(line, ':');
			char	   *path = ctl ? strchr(ctl + 1, ':') : NULL;

			if (path == NULL)
				continue;
			path[strcspn(path, "\n")] = '\0';
			if (strncmp(ctl, "::", 2) == 0)
				strlcpy(paths[0], path + 1, MAXPGPATH);
			else if (strstr(ctl, "memory") != NULL)
				strlcpy(paths[1], path + 1, MAXPGPATH);
		}
		FreeFile(f);
	}

	for (int l = 0; l < 2; l++)
	{
		char		rel[MAXPGPATH];

		strlcpy(rel, paths[l], MAXPGPATH);
		for (;;)
		{
			char		file[MAXPGPATH];
			double		usage,
						limit;
			char	   *slash;

			snprintf(file, MAXPGPATH, "%s%s/%s", layouts[l][0], rel, layouts[l][2]);
			limit = ReadNumberFile(file);
			/* v1 reports "no limit" as a page-rounded 2^63 */
			if (limit > 0 && limit < 4.0e18)
			{
				snprintf(file, MAXPGPATH, "%s%s/%s", layouts[l][0], rel, layouts[l][1]);
				usage = ReadNumberFile(file);
				if (usage >= 0)
					return usage / limit;
			}
			slash = strrchr(rel, '/');
			if (slash == NULL || rel[0] == '\0')
				break;
			*slash = '\0';
		}
	}
	return get_float8_nan();
}

/* PSI: share of the last 10 s some task stalled on memory, NaN without PSI. */
double
PsiPressure(void)
{
	FILE	   *f = AllocateFile("/proc/pressure/memory", "r");
	char		line[256];
	double		v = get_float8_nan();

	if (f == NULL)
		return v;
	while (fgets(line, sizeof(line), f) != NULL)
	{
		char	   *p = strstr(line, "avg10=");

		if (strncmp(line, "some", 4) == 0 && p != NULL)
		{
			v = strtod(p + 6, NULL) / 100.0;
			break;
		}
	}
	FreeFile(f);
	return v;
}

/* Add RssAnon of /proc/pid/status to *anon and raise *shmem to its RssShmem (kB). */
static void
AddProcessMemory(int pid, double *anon, double *shmem)
{
	char		path[64];
	char		line[128];
	FILE	   *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = AllocateFile(path, "r");
	if (f == NULL)
		return;					/* the process has exited */
	while (fgets(line, sizeof(line), f) != NULL)
	{
		if (strncmp(line, "RssAnon:", 8) == 0)
			*anon += strtod(line + 8, NULL);
		else if (strncmp(line, "RssShmem:", 9) == 0)
			*shmem = Max(*shmem, strtod(line + 9, NULL));
	}
	FreeFile(f);
}

/*
 * The server's resident memory in kB: the private memory of the postmaster
 * and of each child, plus the shared memory counted once (every process
 * maps the same segment; the largest share any of them touched stands for
 * it). Children come from /proc/<postmaster>/task/<postmaster>/children,
 * else from a scan of /proc for processes whose parent is the postmaster.
 */
double
ServerResidentKb(void)
{
	double		anon = 0,
				shmem = 0;
	char		path[64];
	FILE	   *f;

	AddProcessMemory(PostmasterPid, &anon, &shmem);
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", PostmasterPid, PostmasterPid);
	f = AllocateFile(path, "r");
	if (f != NULL)
	{
		int			pid;

		while (fscanf(f, "%d", &pid) == 1)
			AddProcessMemory(pid, &anon, &shmem);
		FreeFile(f);
	}
	else
	{
		DIR		   *dir = AllocateDir("/proc");
		struct dirent *de;

		while (dir != NULL && (de = ReadDir(dir, "/proc")) != NULL)
		{
			char		stat[MAXPGPATH];
			FILE	   *sf;
			int			ppid = 0;

			if (de->d_name[0] < '0' || de->d_name[0] > '9')
				continue;
			snprintf(stat, sizeof(stat), "/proc/%s/stat", de->d_name);
			sf = AllocateFile(stat, "r");
			if (sf == NULL)
				continue;
			/* pid (comm) state ppid: comm may hold spaces, skip to its ')' */
			if (fgets(stat, sizeof(stat), sf) != NULL)
			{
				char	   *close = strrchr(stat, ')');

				if (close != NULL)
					ppid = atoi(close + 3);
			}
			FreeFile(sf);
			if (ppid == PostmasterPid)
				AddProcessMemory(atoi(de->d_name), &anon, &shmem);
		}
		if (dir != NULL)
			FreeDir(dir);
	}
	return anon + shmem;
}

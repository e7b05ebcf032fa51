// SPDX-License-Identifier: GPL-2.0-only
#include "learned.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int learned_read_all(int learned_fd, struct learned_entry **ret, size_t *ret_n)
{
	_cleanup_free_ struct learned_entry *v = NULL;
	struct cw_learned_key key, next;
	void *prev = NULL;
	size_t n = 0, cap = 0;

	while (bpf_map_get_next_key(learned_fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (n == CW_MAX_LEARNED)
			return -E2BIG; /* cannot happen: the map holds no more */
		if (n == cap) {
			size_t c = cap ? cap * 2 : 64;
			struct learned_entry *nv = reallocarray(v, c, sizeof(*v));

			if (!nv)
				return -ENOMEM;
			v = nv;
			cap = c;
		}
		if (bpf_map_lookup_elem(learned_fd, &key, &v[n].val) < 0) {
			if (errno == ENOENT)
				continue; /* deleted meanwhile */
			return negative_errno();
		}
		v[n++].key = key;
	}
	if (errno != ENOENT)
		return negative_errno();
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

static const struct learned_app *find_app(const struct learned_app *apps, size_t n, uint32_t uid)
{
	for (size_t i = 0; i < n; i++)
		if (apps[i].uid == uid)
			return &apps[i];
	return NULL;
}

/* Whether the entry can still allow a flow: its app and its name are in the policy in force. */
static bool entry_wanted(int names_fd, uint32_t gen, const struct learned_app *app,
			 const struct cw_learned_val *val)
{
	struct cw_name_key key = {};
	struct cw_name_val name;

	if (!app)
		return false;
	key.scope = cw_scope(gen, app->app);
	key.kind = val->name_kind;
	key.hash = val->name_hash;
	return bpf_map_lookup_elem(names_fd, &key, &name) == 0;
}

int learned_sweep(int learned_fd, int count_fd, int names_fd, uint32_t gen,
		  const struct learned_app *apps, size_t n_apps, uint64_t now_ns,
		  struct learned_sweep_stats *ret)
{
	_cleanup_free_ struct learned_entry *e = NULL;
	_cleanup_free_ uint64_t *counts = calloc(n_apps + 1, sizeof(*counts));
	struct learned_sweep_stats st = { .next_expiry_ns = UINT64_MAX };
	uint32_t key, next;
	void *prev = NULL;
	size_t n = 0;
	int r;

	if (!counts)
		return -ENOMEM;
	r = learned_read_all(learned_fd, &e, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		const struct learned_app *app = find_app(apps, n_apps, e[i].key.app_uid);
		bool expired = e[i].val.expires_ns <= now_ns;
		struct cw_learned_val val;

		if (!expired && entry_wanted(names_fd, gen, app, &e[i].val)) {
			st.kept++;
			st.next_expiry_ns = min_u64(st.next_expiry_ns, e[i].val.expires_ns);
			counts[app - apps]++;
			continue;
		}
		if (bpf_map_lookup_and_delete_elem(learned_fd, &e[i].key, &val) < 0) {
			if (errno == ENOENT)
				continue;
			return negative_errno();
		}
		/* Learned again between the read and the delete: put it back as it is now. */
		if (val.expires_ns > now_ns && entry_wanted(names_fd, gen, app, &val)) {
			if (bpf_map_update_elem(learned_fd, &e[i].key, &val, BPF_NOEXIST) < 0 &&
			    errno != EEXIST)
				return negative_errno();
			st.refreshed++;
			st.next_expiry_ns = min_u64(st.next_expiry_ns, val.expires_ns);
			counts[app - apps]++;
			continue;
		}
		if (expired)
			st.expired++;
		else
			st.orphaned++;
	}

	/* The counts: written for every app, deleted for uids that are no app any more. */
	for (size_t i = 0; i < n_apps; i++)
		if (bpf_map_update_elem(count_fd, &apps[i].uid, &counts[i], BPF_ANY) < 0)
			return negative_errno();
	while (bpf_map_get_next_key(count_fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (!find_app(apps, n_apps, key) && bpf_map_delete_elem(count_fd, &key) < 0 &&
		    errno != ENOENT)
			return negative_errno();
	}
	if (ret)
		*ret = st;
	return 0;
}

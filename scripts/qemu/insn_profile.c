/* Counts the guest instructions a qemu-user run executes (printed at exit
 * with -d plugin) and, when TB_PROFILE_OUT names a file, writes them per
 * translation block start address there, for attributing them to
 * functions. Declares the few calls of QEMU 7.2's plugin ABI it uses
 * (Debian ships no qemu-plugin.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t, struct qemu_plugin_tb *);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t, void *);
extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, qemu_plugin_vcpu_tb_trans_cb_t);
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
extern uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *);
extern void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *, enum qemu_plugin_op, void *, uint64_t);
extern void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, qemu_plugin_udata_cb_t, void *);
extern void qemu_plugin_outs(const char *);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

#define SLOTS (1u << 22)
struct slot { uint64_t vaddr; uint64_t insns; };
static struct slot *table;

static struct slot *lookup(uint64_t v) {
    uint64_t h = (v * 0x9E3779B97F4A7C15ull) >> 42;
    for (;;) {
        struct slot *s = &table[h & (SLOTS - 1)];
        if (s->vaddr == v || s->vaddr == 0) { s->vaddr = v; return s; }
        h++;
    }
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    struct slot *s = lookup(qemu_plugin_tb_vaddr(tb));
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &s->insns,
                                             qemu_plugin_tb_n_insns(tb));
}

static void at_exit(qemu_plugin_id_t id, void *p) {
    unsigned long long total = 0;
    const char *path = getenv("TB_PROFILE_OUT");
    FILE *f = path ? fopen(path, "w") : NULL;
    for (size_t i = 0; i < SLOTS; i++) {
        if (!table[i].insns) continue;
        total += table[i].insns;
        if (f) fprintf(f, "%llx %llu\n", (unsigned long long)table[i].vaddr,
                       (unsigned long long)table[i].insns);
    }
    if (f) fclose(f);
    char line[64];
    snprintf(line, sizeof line, "guest instructions: %llu\n", total);
    qemu_plugin_outs(line);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
    table = calloc(SLOTS, sizeof *table);
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}

/*
 * stats_names.c: tokens whose descriptions need escaping in the JSON
 * report, one without a description, and one with non-ASCII (UTF-8) text.
 * Each is taken once exclusively. Prints the unnamed token's address.
 */
#include "check.h"

static struct lwkt_token quoted, tabbed, unnamed, utf8;

int main(void) {
    lwkt_token_init(&quoted, "say \"hi\" \\ back");
    lwkt_token_init(&tabbed, "tab\there\nnewline");
    lwkt_token_init(&unnamed, NULL);
    lwkt_token_init(&utf8, "caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x94\x91");
    lwkt_token_t all[] = {&quoted, &tabbed, &unnamed, &utf8};
    for (unsigned i = 0; i < sizeof all / sizeof all[0]; i++) {
        lwkt_gettoken(all[i]);
        lwkt_reltoken(all[i]);
    }
    printf("unnamed %p\n", (void *)&unnamed);
    return 0;
}

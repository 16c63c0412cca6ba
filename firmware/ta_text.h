/* Text helpers the runtime shares: a word compare, digits to an integer, an integer to digits, a
 * request's number words to digits, and the result helpers tool handlers append with. One copy each (the console, the grammar, the agent
 * and the default tools all use these). */
#ifndef TA_TEXT_H
#define TA_TEXT_H

#include <stddef.h>
#include <stdint.h>

#define TA_TEXT_U64_MAX 20 /* digits of the largest uint64 */

/* text[0..n) is word (prefix: or the start of it). */
int ta_text_match(const char *word, const uint8_t *text, size_t n, int prefix);

/* Every byte of p[0..n) is a decimal digit (true for n == 0). */
int ta_text_digits(const uint8_t *p, size_t n);

/* The value of the n digits p[0..n), or -1 if it exceeds INT32_MAX (the caller checked they are digits). */
int64_t ta_text_value(const uint8_t *p, size_t n);

/* Writes the decimal digits of v to out (at least TA_TEXT_U64_MAX bytes, no NUL); returns how many. */
size_t ta_text_u64(char *out, uint64_t v);

/* Rewrites the number words of t[0..n) as digits, in place ("ninety seconds" -> "90 seconds"; the
 * rules are agent/numbers.py's, which is the spec); returns the new length (never more than n). */
size_t ta_text_numbers(uint8_t *t, size_t n);

#define TA_TEXT_NAME_MAX 32 /* letters in a word that names a tool (TA_NAME_MAX in ta_grammar.h) */

/* agent/naming.py names_tool: a word of s[0..n) (a run of ASCII letters, lower-cased) is one of the
 * n_names names (lower-case, at most TA_TEXT_NAME_MAX letters) or one typo from one; with units, an
 * h, m or s right after a digit counts too. */
int ta_text_names(const uint8_t *s, size_t n, const char *const *names, int32_t n_names, int units);

/* agent/naming.py is_acknowledgement: s[0..n) has no digit and no word (a run of ASCII letters,
 * lower-cased) outside its ACK_WORDS ("thanks", "ok, got it"): then the last turn's tool needs naming
 * again before a write call of it runs. */
int ta_text_ack(const uint8_t *s, size_t n);

/* Result helpers for handlers: append to the NUL-terminated dst of capacity cap, truncating. */
void ta_cat(char *dst, size_t cap, const char *s);
void ta_cat_i32(char *dst, size_t cap, int32_t v);

#endif /* TA_TEXT_H */

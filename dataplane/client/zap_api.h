/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * ZAP_API: marks a function that libzapclient.so exports.
 *
 * zap is compiled with -fvisibility=hidden, so a shared library exports
 * nothing by default. A declaration in a public header that carries ZAP_API
 * is part of libzapclient's ABI; every other function stays inside the
 * library. tests/client/zapclient.symbols lists the exported names and the
 * client-symbols test fails when the built library and the list differ, so
 * an export is a decision (dataplane/client/README.md).
 *
 * The static library and the programs that link it are not affected:
 * visibility only decides what a shared object exports.
 */
#ifndef ZAP_API_H
#define ZAP_API_H

#define ZAP_API __attribute__((visibility("default")))

#endif /* ZAP_API_H */

// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the log tests: temp directories, records, files.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

extern "C" {
#include "log/log.h"
}

namespace zaplogtest
{

inline uint64_t splitmix64(uint64_t &s)
{
	uint64_t z = (s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

// Deterministic payload bytes for (seed, key): the crash test's parent recomputes them.
inline std::string gen_payload(uint64_t seed, uint64_t key, uint64_t len)
{
	std::string s(len, '\0');
	uint64_t st = seed ^ (key * 0xd1342543de82ef95ull);
	for (uint64_t i = 0; i < len; i += 8) {
		uint64_t v = splitmix64(st);
		memcpy(&s[i], &v, len - i < 8 ? len - i : 8);
	}
	return s;
}

struct Rec {
	uint8_t type;
	uint64_t slot, ballot;
	std::string payload;
	bool operator==(const Rec &o) const
	{
		return type == o.type && slot == o.slot && ballot == o.ballot &&
		       payload == o.payload;
	}
};

inline int collect(uint8_t type, uint64_t slot, uint64_t ballot, const void *payload, uint64_t len,
		   void *ctx)
{
	auto *v = static_cast<std::vector<Rec> *>(ctx);
	v->push_back(Rec{type, slot, ballot, std::string(static_cast<const char *>(payload), len)});
	return 0;
}

inline uint64_t record_bytes(uint64_t payload_len)
{
	return (ZAP_LOG_HEADER_BYTES + payload_len + 7) & ~7ull;
}

inline void rm_rf(const std::string &path)
{
	nftw(
	    path.c_str(),
	    [](const char *p, const struct stat *, int, struct FTW *) { return remove(p); }, 16,
	    FTW_DEPTH | FTW_PHYS);
}

inline std::vector<std::string> segment_files(const std::string &dir)
{
	std::vector<std::string> out;
	DIR *d = opendir(dir.c_str());
	if (d == nullptr)
		return out;
	while (struct dirent *e = readdir(d)) {
		std::string n = e->d_name;
		if (n.size() > 5 && n.compare(n.size() - 5, 5, ".zlog") == 0)
			out.push_back(n);
	}
	closedir(d);
	std::sort(out.begin(), out.end());
	return out;
}

inline std::string read_file(const std::string &path)
{
	std::string s;
	FILE *f = fopen(path.c_str(), "rb");
	if (f == nullptr)
		return s;
	char b[65536];
	size_t n;
	while ((n = fread(b, 1, sizeof(b), f)) > 0)
		s.append(b, n);
	fclose(f);
	return s;
}

// Replace the file's contents (same inode: truncate, then write).
inline void write_file(const std::string &path, const std::string &data)
{
	FILE *f = fopen(path.c_str(), "wb");
	ASSERT_NE(f, nullptr) << path;
	ASSERT_EQ(fwrite(data.data(), 1, data.size(), f), data.size());
	fclose(f);
}

// A fresh directory under /tmp per test, removed after; the log lives in dir/log.
class LogTest : public ::testing::Test
{
      protected:
	std::string root, dir;
	char err[512];

	void SetUp() override
	{
		char t[] = "/tmp/zap-log-test-XXXXXX";
		ASSERT_NE(mkdtemp(t), nullptr);
		root = t;
		dir = root + "/log";
		err[0] = '\0';
	}
	void TearDown() override
	{
		rm_rf(root);
	}
	zap_log_params params(uint64_t segment_bytes = 0,
			      zap_log_durability d = ZAP_LOG_DURABILITY_FSYNC)
	{
		zap_log_params p;
		zap_log_params_init(&p, dir.c_str());
		if (segment_bytes)
			p.segment_bytes = segment_bytes;
		p.durability = d;
		return p;
	}
	int open_log(const zap_log_params &p, std::vector<Rec> *out, zap_log **l)
	{
		return zap_log_open(&p, out ? collect : nullptr, out, l, err, sizeof(err));
	}
	void append_all(zap_log *l, const std::vector<Rec> &recs)
	{
		for (const Rec &r : recs)
			ASSERT_EQ(zap_log_append(l, r.type, r.slot, r.ballot, r.payload.data(),
						 r.payload.size(), nullptr),
				  0);
	}
};

} // namespace zaplogtest

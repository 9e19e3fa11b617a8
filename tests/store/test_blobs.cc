// SPDX-License-Identifier: Apache-2.0
// The blob area (dataplane/store/blobs.c): content-addressed files under
// <dir>/<2 hex>/<64 hex>, written whole and renamed into place, checked by
// their name, swept by a keep callback; and the hash set a sweep uses.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

extern "C" {
#include "store/blobs.h"
}

namespace
{

namespace fs = std::filesystem;

using Bytes = std::vector<uint8_t>;
using Hash = std::vector<uint8_t>;
using BlobStats = struct zap_blobs_stats;

// A fresh directory under /tmp, removed with everything in it.
struct TempDir {
	std::string path;
	TempDir()
	{
		char tmpl[] = "/tmp/zap_blobs_test_XXXXXX";
		char *p = mkdtemp(tmpl);
		EXPECT_NE(p, nullptr) << strerror(errno);
		path = p ? p : "";
	}
	~TempDir()
	{
		std::error_code ec;
		if (!path.empty())
			fs::remove_all(path, ec);
	}
	TempDir(const TempDir &) = delete;
	TempDir &operator=(const TempDir &) = delete;
};

// A blob area opened in a fresh directory (its "blobs" subdirectory, so that
// open has a parent to create).
struct Area {
	TempDir tmp;
	std::string dir;
	zap_blobs *b = nullptr;

	Area() : dir(tmp.path + "/node/blobs")
	{
		EXPECT_EQ(zap_blobs_open(dir.c_str(), &b), 0);
		EXPECT_NE(b, nullptr);
	}
	~Area()
	{
		zap_blobs_close(b);
	}
	void Reopen()
	{
		zap_blobs_close(b);
		b = nullptr;
		ASSERT_EQ(zap_blobs_open(dir.c_str(), &b), 0);
	}
	BlobStats Stats() const
	{
		BlobStats st;
		memset(&st, 0xa5, sizeof(st));
		zap_blobs_stats(b, &st);
		return st;
	}
};

Bytes Random(size_t n, uint32_t seed)
{
	std::mt19937 rng(seed);
	Bytes b(n);
	for (auto &c : b)
		c = (uint8_t)rng();
	return b;
}

Hash HashOf(const Bytes &b)
{
	Hash h(ZAP_BLOB_HASH_BYTES);
	zap_blobs_hash(b.data(), b.size(), h.data());
	return h;
}

std::string PathOf(const std::string &dir, const Hash &h)
{
	char buf[4096];
	EXPECT_EQ(zap_blobs_path(dir.c_str(), h.data(), buf, sizeof(buf)), 0);
	return buf;
}

std::string Hex(const Hash &h)
{
	static const char d[] = "0123456789abcdef";
	std::string s;
	for (uint8_t c : h) {
		s += d[c >> 4];
		s += d[c & 15];
	}
	return s;
}

// Every regular file below @p dir, by path relative to it.
std::set<std::string> Files(const std::string &dir)
{
	std::set<std::string> out;
	for (const auto &e : fs::recursive_directory_iterator(dir))
		if (e.is_regular_file())
			out.insert(fs::relative(e.path(), dir).string());
	return out;
}

// Read a blob back through zap_blobs_open_file().
Bytes ReadBlob(const std::string &dir, const Hash &h)
{
	uint64_t len = UINT64_MAX;
	int fd = zap_blobs_open_file(dir.c_str(), h.data(), &len);
	EXPECT_GE(fd, 0);
	if (fd < 0)
		return {};
	Bytes out(len);
	size_t got = 0;
	while (got < len) {
		ssize_t k = read(fd, out.data() + got, len - got);
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	EXPECT_EQ(got, len);
	close(fd);
	return out;
}

void WriteFile(const std::string &path, const std::string &content)
{
	std::ofstream f(path, std::ios::binary);
	ASSERT_TRUE(f.good()) << path;
	f << content;
}

TEST(Blobs, HashIsBlake2b256)
{
	// BLAKE2b-256 of "abc" (RFC 7693 family; the 32-byte digest)
	Bytes abc = {'a', 'b', 'c'};
	EXPECT_EQ(Hex(HashOf(abc)),
		  "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
	Bytes empty;
	EXPECT_EQ(Hex(HashOf(empty)),
		  "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
}

TEST(Blobs, PathIsFanOutThenFullHexAndRefusesASmallBuffer)
{
	Hash h(ZAP_BLOB_HASH_BYTES);
	for (size_t i = 0; i < h.size(); i++)
		h[i] = (uint8_t)(0xab + i);
	std::string hex = Hex(h);
	EXPECT_EQ(PathOf("/x/y", h), "/x/y/ab/" + hex);
	char buf[4096];
	size_t need = strlen("/x/y") + ZAP_BLOB_PATH_EXTRA;
	EXPECT_EQ(zap_blobs_path("/x/y", h.data(), buf, need), 0);
	EXPECT_EQ(zap_blobs_path("/x/y", h.data(), buf, need - 1), -ENAMETOOLONG);
}

TEST(Blobs, PutThenHasOpenFileAndVerifyRoundTrip)
{
	Area a;
	// larger than the 1 MiB the area reads and writes at a time
	Bytes data = Random((3u << 20) + 12345, 1);
	Hash h = HashOf(data);
	EXPECT_FALSE(zap_blobs_has(a.b, h.data(), data.size()));
	ASSERT_EQ(zap_blobs_put(a.b, h.data(), data.data(), data.size()), 0);
	EXPECT_TRUE(zap_blobs_has(a.b, h.data(), data.size()));
	EXPECT_STREQ(zap_blobs_dir(a.b), a.dir.c_str());

	// the file is where zap_blobs_path says, and nothing else was left
	std::string path = PathOf(a.dir, h);
	struct stat st;
	ASSERT_EQ(stat(path.c_str(), &st), 0);
	EXPECT_EQ((uint64_t)st.st_size, data.size());
	std::set<std::string> files = Files(a.dir);
	ASSERT_EQ(files.size(), 1u);
	EXPECT_EQ(*files.begin(), Hex(h).substr(0, 2) + "/" + Hex(h));

	EXPECT_EQ(ReadBlob(a.dir, h), data);
	EXPECT_EQ(zap_blobs_verify(a.dir.c_str(), h.data()), 0);

	BlobStats s = a.Stats();
	EXPECT_EQ(s.files, 1u);
	EXPECT_EQ(s.bytes, data.size());
	EXPECT_EQ(s.written, 1u);
	EXPECT_EQ(s.written_bytes, data.size());
	EXPECT_EQ(s.shared, 0u);
	EXPECT_EQ(s.swept, 0u);
	EXPECT_EQ(s.swept_bytes, 0u);
	EXPECT_EQ(s.errors, 0u);
}

TEST(Blobs, HasIsFalseForAnotherLengthOrAnotherHash)
{
	Area a;
	Bytes data = Random(1000, 2);
	Hash h = HashOf(data);
	ASSERT_EQ(zap_blobs_put(a.b, h.data(), data.data(), data.size()), 0);
	EXPECT_TRUE(zap_blobs_has(a.b, h.data(), 1000));
	EXPECT_FALSE(zap_blobs_has(a.b, h.data(), 999));
	EXPECT_FALSE(zap_blobs_has(a.b, h.data(), 1001));
	EXPECT_FALSE(zap_blobs_has(a.b, h.data(), 0));
	Hash other = h;
	other[31] ^= 1;
	EXPECT_FALSE(zap_blobs_has(a.b, other.data(), 1000));
}

TEST(Blobs, SameContentTwiceIsWrittenOnceAndShared)
{
	Area a;
	Bytes data = Random(70000, 3);
	Hash h = HashOf(data);
	ASSERT_EQ(zap_blobs_put(a.b, h.data(), data.data(), data.size()), 0);
	ASSERT_EQ(zap_blobs_put(a.b, h.data(), data.data(), data.size()), 0);
	ASSERT_EQ(zap_blobs_put(a.b, h.data(), data.data(), data.size()), 0);
	BlobStats s = a.Stats();
	EXPECT_EQ(s.files, 1u);
	EXPECT_EQ(s.bytes, data.size());
	EXPECT_EQ(s.written, 1u);
	EXPECT_EQ(s.written_bytes, data.size());
	EXPECT_EQ(s.shared, 2u);
	EXPECT_EQ(s.errors, 0u);
	EXPECT_EQ(Files(a.dir).size(), 1u); // one file, no temporary left
	EXPECT_EQ(ReadBlob(a.dir, h), data);
}

TEST(Blobs, OpenRemovesLeftoverTemporariesAndCountsWhatIsHeld)
{
	Area a;
	std::vector<Bytes> blobs = {Random(10, 4), Random(5000, 5), Random(123456, 6)};
	uint64_t total = 0;
	std::set<std::string> names;
	for (const Bytes &d : blobs) {
		Hash h = HashOf(d);
		ASSERT_EQ(zap_blobs_put(a.b, h.data(), d.data(), d.size()), 0);
		total += d.size();
		names.insert(Hex(h).substr(0, 2) + "/" + Hex(h));
	}
	// what a crash in the middle of puts leaves: temporaries in fan-out
	// directories, one beside a blob, one in a directory of its own
	std::string beside = Hex(HashOf(blobs[0])).substr(0, 2);
	WriteFile(a.dir + "/" + beside + "/tmp.0", "half a blob");
	ASSERT_TRUE(fs::create_directory(a.dir + "/zz"));
	WriteFile(a.dir + "/zz/tmp.17", std::string(4096, 'x'));
	ASSERT_EQ(Files(a.dir).size(), 5u);

	a.Reopen();
	EXPECT_EQ(Files(a.dir), names);
	BlobStats s = a.Stats();
	EXPECT_EQ(s.files, 3u);
	EXPECT_EQ(s.bytes, total);
	EXPECT_EQ(s.written, 0u); // counters of the run, not of the directory
	EXPECT_EQ(s.shared, 0u);
	EXPECT_EQ(s.errors, 0u);
	for (const Bytes &d : blobs) {
		Hash h = HashOf(d);
		EXPECT_TRUE(zap_blobs_has(a.b, h.data(), d.size()));
		EXPECT_EQ(zap_blobs_verify(a.dir.c_str(), h.data()), 0);
	}
	// a put of held content after the reopen is shared, not written
	ASSERT_EQ(zap_blobs_put(a.b, HashOf(blobs[1]).data(), blobs[1].data(), blobs[1].size()), 0);
	EXPECT_EQ(a.Stats().shared, 1u);
	EXPECT_EQ(a.Stats().written, 0u);
	EXPECT_EQ(a.Stats().files, 3u);
}

TEST(Blobs, VerifyRefusesAlteredBytes)
{
	Area a;
	Bytes data = Random((1u << 20) + 7, 7);
	Hash h = HashOf(data);
	ASSERT_EQ(zap_blobs_put(a.b, h.data(), data.data(), data.size()), 0);
	ASSERT_EQ(zap_blobs_verify(a.dir.c_str(), h.data()), 0);
	std::string path = PathOf(a.dir, h);
	int fd = open(path.c_str(), O_WRONLY);
	ASSERT_GE(fd, 0);
	uint8_t c = data[(1u << 20) + 3] ^ 0x40; // in the second piece verify reads
	ASSERT_EQ(pwrite(fd, &c, 1, (1u << 20) + 3), 1);
	close(fd);
	EXPECT_EQ(zap_blobs_verify(a.dir.c_str(), h.data()), -EBADMSG);
	// a truncated file too
	ASSERT_EQ(truncate(path.c_str(), 100), 0);
	EXPECT_EQ(zap_blobs_verify(a.dir.c_str(), h.data()), -EBADMSG);
	EXPECT_FALSE(zap_blobs_has(a.b, h.data(), data.size()));
}

TEST(Blobs, OpenFileAndVerifyOfAMissingHashSayENOENT)
{
	Area a;
	Hash h = HashOf(Random(50, 8));
	uint64_t len = 77;
	EXPECT_EQ(zap_blobs_open_file(a.dir.c_str(), h.data(), &len), -ENOENT);
	EXPECT_EQ(zap_blobs_verify(a.dir.c_str(), h.data()), -ENOENT);
	EXPECT_FALSE(zap_blobs_has(a.b, h.data(), 50));
	// its fan-out directory existing changes nothing
	Bytes other = Random(60, 9);
	Hash ho = HashOf(other);
	ASSERT_EQ(zap_blobs_put(a.b, ho.data(), other.data(), other.size()), 0);
	Hash same_dir = ho;
	same_dir[31] ^= 0xff;
	EXPECT_EQ(zap_blobs_open_file(a.dir.c_str(), same_dir.data(), &len), -ENOENT);
}

struct KeepSet {
	zap_hashset set{};
	std::vector<Hash> asked;
};

bool KeepIn(void *ctx, const uint8_t hash[ZAP_BLOB_HASH_BYTES])
{
	KeepSet *k = static_cast<KeepSet *>(ctx);
	k->asked.emplace_back(hash, hash + ZAP_BLOB_HASH_BYTES);
	return zap_hashset_has(&k->set, hash);
}

TEST(Blobs, SweepRemovesExactlyTheRejectedFiles)
{
	Area a;
	std::vector<Bytes> blobs;
	for (uint32_t i = 0; i < 12; i++)
		blobs.push_back(Random(100 + 1000 * i, 100 + i));
	KeepSet k;
	uint64_t kept_bytes = 0, gone_bytes = 0;
	for (size_t i = 0; i < blobs.size(); i++) {
		Hash h = HashOf(blobs[i]);
		ASSERT_EQ(zap_blobs_put(a.b, h.data(), blobs[i].data(), blobs[i].size()), 0);
		if (i % 3 == 0) {
			ASSERT_EQ(zap_hashset_add(&k.set, h.data()), 0);
			kept_bytes += blobs[i].size();
		} else {
			gone_bytes += blobs[i].size();
		}
	}
	// a file that is not a blob's is left alone (and not offered to keep)
	std::string first = Hex(HashOf(blobs[0])).substr(0, 2);
	std::string foreign = a.dir + "/" + first + "/README";
	WriteFile(foreign, "not a blob");

	EXPECT_EQ(zap_blobs_sweep(a.b, KeepIn, &k), 8);
	EXPECT_EQ(k.asked.size(), 12u);
	for (size_t i = 0; i < blobs.size(); i++) {
		Hash h = HashOf(blobs[i]);
		bool keep = i % 3 == 0;
		EXPECT_EQ(zap_blobs_has(a.b, h.data(), blobs[i].size()), keep) << i;
		EXPECT_EQ(fs::exists(PathOf(a.dir, h)), keep) << i;
		if (keep) {
			EXPECT_EQ(zap_blobs_verify(a.dir.c_str(), h.data()), 0);
		}
	}
	EXPECT_TRUE(fs::exists(foreign));
	BlobStats s = a.Stats();
	EXPECT_EQ(s.files, 4u);
	EXPECT_EQ(s.bytes, kept_bytes);
	EXPECT_EQ(s.swept, 8u);
	EXPECT_EQ(s.swept_bytes, gone_bytes);
	EXPECT_EQ(s.written, 12u);
	EXPECT_EQ(s.errors, 0u);

	// nothing more to remove; a reopen counts the same
	k.asked.clear();
	EXPECT_EQ(zap_blobs_sweep(a.b, KeepIn, &k), 0);
	EXPECT_EQ(k.asked.size(), 4u);
	EXPECT_EQ(a.Stats().swept, 8u);
	ASSERT_EQ(unlink(foreign.c_str()), 0); // (how open counts such a file: its own test)
	a.Reopen();
	EXPECT_EQ(a.Stats().files, 4u);
	EXPECT_EQ(a.Stats().bytes, kept_bytes);

	// a swept blob put again is written again
	Hash h1 = HashOf(blobs[1]);
	ASSERT_EQ(zap_blobs_put(a.b, h1.data(), blobs[1].data(), blobs[1].size()), 0);
	EXPECT_EQ(a.Stats().written, 1u);
	EXPECT_EQ(a.Stats().files, 5u);
	zap_hashset_free(&k.set);
}

bool KeepNone(void *, const uint8_t *)
{
	return false;
}

// Open counts the blob files it finds; a file that is not a blob (not named
// by 64 hex digits) is no more counted by open than it is removed or
// counted by a sweep.
TEST(Blobs, OpenCountsOnlyBlobFiles)
{
	Area a;
	Bytes data = Random(2000, 30);
	Hash h = HashOf(data);
	ASSERT_EQ(zap_blobs_put(a.b, h.data(), data.data(), data.size()), 0);
	std::string sub = a.dir + "/" + Hex(h).substr(0, 2);
	WriteFile(sub + "/README", "not a blob");
	WriteFile(sub + "/" + Hex(h).substr(0, 10), "a short name");
	a.Reopen();
	EXPECT_EQ(a.Stats().files, 1u);
	EXPECT_EQ(a.Stats().bytes, data.size());
	EXPECT_EQ(zap_blobs_sweep(a.b, KeepNone, nullptr), 1);
	EXPECT_EQ(a.Stats().files, 0u);
	EXPECT_EQ(a.Stats().bytes, 0u);
}

// A held file of the wrong length (cut short by a bad disk, say) is not
// "held": put writes it again, and the area still holds one file.
TEST(Blobs, PutReplacesAFileOfTheWrongLengthAndCountsItOnce)
{
	Area a;
	Bytes data = Random(5000, 31);
	Hash h = HashOf(data);
	ASSERT_EQ(zap_blobs_put(a.b, h.data(), data.data(), data.size()), 0);
	ASSERT_EQ(truncate(PathOf(a.dir, h).c_str(), 1000), 0);
	EXPECT_FALSE(zap_blobs_has(a.b, h.data(), data.size()));
	ASSERT_EQ(zap_blobs_put(a.b, h.data(), data.data(), data.size()), 0);
	EXPECT_TRUE(zap_blobs_has(a.b, h.data(), data.size()));
	EXPECT_EQ(zap_blobs_verify(a.dir.c_str(), h.data()), 0);
	EXPECT_EQ(ReadBlob(a.dir, h), data);
	EXPECT_EQ(Files(a.dir).size(), 1u);
	EXPECT_EQ(a.Stats().written, 2u);
	EXPECT_EQ(a.Stats().files, 1u);
	// bytes: the area counted 5000 for the first file and cannot know it was
	// cut short behind its back (it takes the replaced file's 1000 bytes off);
	// a reopen counts what the disk holds
	EXPECT_EQ(a.Stats().bytes, 2 * data.size() - 1000u);
	a.Reopen();
	EXPECT_EQ(a.Stats().files, 1u);
	EXPECT_EQ(a.Stats().bytes, data.size());
}

TEST(Blobs, SweepOfAnEmptyAreaRemovesNothing)
{
	Area a;
	EXPECT_EQ(zap_blobs_sweep(a.b, KeepNone, nullptr), 0);
	EXPECT_EQ(a.Stats().swept, 0u);
	EXPECT_EQ(a.Stats().errors, 0u);
}

TEST(Blobs, PutIntoAnUnwritablePlaceFailsAndCounts)
{
	Area a;
	Bytes data = Random(4000, 10);
	Hash h = HashOf(data);
	// the fan-out directory of this hash is a regular file: nothing can go in it
	std::string sub = a.dir + "/" + Hex(h).substr(0, 2);
	WriteFile(sub, "in the way");
	int rc = zap_blobs_put(a.b, h.data(), data.data(), data.size());
	EXPECT_LT(rc, 0);
	EXPECT_NE(rc, -EEXIST);
	BlobStats s = a.Stats();
	EXPECT_EQ(s.errors, 1u);
	EXPECT_EQ(s.files, 0u);
	EXPECT_EQ(s.bytes, 0u);
	EXPECT_EQ(s.written, 0u);
	EXPECT_FALSE(zap_blobs_has(a.b, h.data(), data.size()));
	uint64_t len;
	EXPECT_LT(zap_blobs_open_file(a.dir.c_str(), h.data(), &len), 0);

	// once the obstacle is gone the same put works
	ASSERT_EQ(unlink(sub.c_str()), 0);
	ASSERT_EQ(zap_blobs_put(a.b, h.data(), data.data(), data.size()), 0);
	EXPECT_EQ(ReadBlob(a.dir, h), data);
	EXPECT_EQ(a.Stats().errors, 1u);
	EXPECT_EQ(a.Stats().files, 1u);
}

TEST(Blobs, OpenFailsWhereTheDirectoryCannotBeMade)
{
	TempDir t;
	std::string file = t.path + "/file";
	WriteFile(file, "x");
	zap_blobs *b = reinterpret_cast<zap_blobs *>(0x1);
	int rc = zap_blobs_open((file + "/blobs").c_str(), &b);
	EXPECT_LT(rc, 0);
	EXPECT_EQ(b, nullptr);
}

TEST(Blobs, ZeroLengthBlob)
{
	Area a;
	static const uint8_t none[1] = {0};
	Bytes empty;
	Hash h = HashOf(empty);
	ASSERT_EQ(zap_blobs_put(a.b, h.data(), none, 0), 0);
	EXPECT_TRUE(zap_blobs_has(a.b, h.data(), 0));
	EXPECT_FALSE(zap_blobs_has(a.b, h.data(), 1));
	uint64_t len = 99;
	int fd = zap_blobs_open_file(a.dir.c_str(), h.data(), &len);
	ASSERT_GE(fd, 0);
	EXPECT_EQ(len, 0u);
	char c;
	EXPECT_EQ(read(fd, &c, 1), 0);
	close(fd);
	EXPECT_EQ(zap_blobs_verify(a.dir.c_str(), h.data()), 0);
	ASSERT_EQ(zap_blobs_put(a.b, h.data(), none, 0), 0);
	BlobStats s = a.Stats();
	EXPECT_EQ(s.files, 1u);
	EXPECT_EQ(s.bytes, 0u);
	EXPECT_EQ(s.written, 1u);
	EXPECT_EQ(s.shared, 1u);
	a.Reopen();
	EXPECT_EQ(a.Stats().files, 1u);
	EXPECT_EQ(zap_blobs_sweep(a.b, KeepNone, nullptr), 1);
	EXPECT_EQ(a.Stats().files, 0u);
	EXPECT_EQ(a.Stats().swept, 1u);
	EXPECT_EQ(a.Stats().swept_bytes, 0u);
}

Hash Numbered(uint32_t i)
{
	Bytes b(4);
	memcpy(b.data(), &i, 4);
	return HashOf(b);
}

TEST(Blobs, HashSetHoldsManyWithDuplicates)
{
	zap_hashset s{};
	EXPECT_FALSE(zap_hashset_has(&s, Numbered(0).data()));
	for (uint32_t i = 0; i < 1000; i++)
		ASSERT_EQ(zap_hashset_add(&s, Numbered(i).data()), 0);
	for (uint32_t i = 0; i < 1000; i += 7) // duplicates
		ASSERT_EQ(zap_hashset_add(&s, Numbered(i).data()), 0);
	for (uint32_t i = 0; i < 1000; i++)
		EXPECT_TRUE(zap_hashset_has(&s, Numbered(i).data())) << i;
	for (uint32_t i = 1000; i < 1200; i++)
		EXPECT_FALSE(zap_hashset_has(&s, Numbered(i).data())) << i;
	Hash zero(ZAP_BLOB_HASH_BYTES, 0), ones(ZAP_BLOB_HASH_BYTES, 0xff);
	EXPECT_FALSE(zap_hashset_has(&s, zero.data()));
	EXPECT_FALSE(zap_hashset_has(&s, ones.data()));
	// adding after lookups: the new ones are found, the old ones still are
	for (uint32_t i = 1000; i < 1100; i++)
		ASSERT_EQ(zap_hashset_add(&s, Numbered(i).data()), 0);
	ASSERT_EQ(zap_hashset_add(&s, zero.data()), 0);
	for (uint32_t i = 0; i < 1100; i++)
		EXPECT_TRUE(zap_hashset_has(&s, Numbered(i).data())) << i;
	for (uint32_t i = 1100; i < 1200; i++)
		EXPECT_FALSE(zap_hashset_has(&s, Numbered(i).data())) << i;
	EXPECT_TRUE(zap_hashset_has(&s, zero.data()));
	EXPECT_FALSE(zap_hashset_has(&s, ones.data()));
	zap_hashset_free(&s);
	EXPECT_EQ(s.h, nullptr);
	EXPECT_EQ(s.n, 0u);
	EXPECT_FALSE(zap_hashset_has(&s, zero.data()));
	zap_hashset_free(&s); // twice is fine
}

} // namespace

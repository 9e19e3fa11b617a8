// Seeded mutation fuzzing of the configuration loader.
//
// Takes the example configs, applies random byte flips, truncations, line
// deletions and duplications, and loads each result. Every load must either
// succeed or fail with "NAME:LINE: message" (or "NAME: message"); none may
// crash, leak or trip the sanitizers. The seed is printed; set
// ZAP_CONFIG_FUZZ_SEED to replay a run, ZAP_CONFIG_FUZZ_ITERS to change its size.

#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "config.h"

namespace
{

std::string ReadExample(const std::string &name)
{
	const char *root = std::getenv("ZAP_SOURCE_ROOT");
	std::ifstream f(std::string(root ? root : ".") + "/firmware-config/" + name,
			std::ios::binary);
	std::stringstream ss;
	ss << f.rdbuf();
	return ss.str();
}

std::vector<std::string> SplitLines(const std::string &s)
{
	std::vector<std::string> out;
	std::string cur;
	for (char ch : s) {
		cur += ch;
		if (ch == '\n') {
			out.push_back(cur);
			cur.clear();
		}
	}
	if (!cur.empty())
		out.push_back(cur);
	return out;
}

std::string JoinLines(const std::vector<std::string> &v)
{
	std::string s;
	for (const auto &l : v)
		s += l;
	return s;
}

// True if @p err is "NAME:LINE: text" (or "NAME: text" unless @p need_line).
// (Hand-written: std::regex trips GCC 12 warnings under the sanitizers.)
bool IsLocated(const std::string &err, const std::string &name, bool need_line)
{
	if (err.compare(0, name.size(), name) != 0)
		return false;
	size_t i = name.size();
	if (i < err.size() && err[i] == ':') {
		size_t digits = 0;
		for (i++; i < err.size() && err[i] >= '0' && err[i] <= '9'; i++)
			digits++;
		if (digits == 0 || i >= err.size() || err[i] != ':')
			return false;
		i++;
	} else if (need_line) {
		return false;
	} else if (i >= err.size() || err[i] != ':') {
		return false;
	} else {
		i++;
	}
	return i + 1 < err.size() && err[i] == ' ' && err[i + 1] != ' ';
}

// Line number in "NAME:LINE: ..." (0 if none).
unsigned LineOf(const std::string &err, const std::string &name)
{
	if (err.size() <= name.size() + 1 || err[name.size()] != ':')
		return 0;
	return static_cast<unsigned>(std::strtoul(err.c_str() + name.size() + 1, nullptr, 10));
}

// The reported line must exist, and an unknown key must be on it.
void CheckLine(const std::string &err, const std::string &text)
{
	std::vector<std::string> lines = SplitLines(text);
	unsigned line = LineOf(err, "fuzz.yaml");
	ASSERT_GE(line, 1u) << err;
	ASSERT_LE(line, lines.size() + 1) << err;
	const std::string tag = "unknown key '";
	size_t k = err.find(tag);
	if (k == std::string::npos || line > lines.size())
		return;
	std::string key = err.substr(k + tag.size());
	key = key.substr(0, key.find('\''));
	for (char ch : key)
		if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_')
			return; // escapes, quotes: the raw text may differ
	if (!key.empty()) {
		ASSERT_NE(lines[line - 1].find(key), std::string::npos)
		    << err << " but line " << line << " is: " << lines[line - 1];
	}
}

// Characters that change YAML structure more often than random bytes do.
const char kInteresting[] = ":-[]{}#&*!|>'\"%@` \t\n,?0x9\xff";

std::string Mutate(std::string s, std::mt19937_64 &rng)
{
	unsigned n_mut = 1 + rng() % 4;
	for (unsigned m = 0; m < n_mut && !s.empty(); m++) {
		switch (rng() % 7) {
		case 0: // flip a bit
			s[rng() % s.size()] ^= static_cast<char>(1u << (rng() % 8));
			break;
		case 1: // replace a byte with an interesting one
			s[rng() % s.size()] = kInteresting[rng() % (sizeof(kInteresting) - 1)];
			break;
		case 2: // truncate
			s.resize(rng() % s.size());
			break;
		case 3: { // delete a line
			auto lines = SplitLines(s);
			lines.erase(lines.begin() + static_cast<long>(rng() % lines.size()));
			s = JoinLines(lines);
			break;
		}
		case 4: { // duplicate a line
			auto lines = SplitLines(s);
			size_t i = rng() % lines.size();
			lines.insert(lines.begin() + static_cast<long>(i), lines[i]);
			s = JoinLines(lines);
			break;
		}
		case 5: // replace a byte with a random one
			s[rng() % s.size()] = static_cast<char>(rng() & 0xff);
			break;
		default: { // swap two lines
			auto lines = SplitLines(s);
			std::swap(lines[rng() % lines.size()], lines[rng() % lines.size()]);
			s = JoinLines(lines);
			break;
		}
		}
	}
	return s;
}

} // namespace

TEST(ConfigFuzz, MutatedExamplesLoadOrFailWithLocatedMessage)
{
	uint64_t seed =
	    static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
	if (const char *env = std::getenv("ZAP_CONFIG_FUZZ_SEED"))
		seed = std::strtoull(env, nullptr, 0);
	unsigned iters = 1000;
	if (const char *env = std::getenv("ZAP_CONFIG_FUZZ_ITERS"))
		iters = static_cast<unsigned>(std::strtoul(env, nullptr, 0));
	std::printf("config fuzz seed: %llu (replay with ZAP_CONFIG_FUZZ_SEED=%llu)\n",
		    static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
	RecordProperty("seed", std::to_string(seed));

	const char *examples[] = {"dev-single.yaml", "local-3node.yaml", "rack-3node.yaml",
				  "rack-5node.yaml"};
	std::mt19937_64 rng(seed);
	unsigned ok = 0, failed = 0;

	for (const char *ex : examples) {
		std::string base = ReadExample(ex);
		ASSERT_FALSE(base.empty()) << ex;
		for (unsigned i = 0; i < iters; i++) {
			std::string text = Mutate(base, rng);
			char err[512] = "";
			zap_config *c = nullptr;
			int rc = zap_config_load_string("fuzz.yaml", text.data(), text.size(), &c,
							err, sizeof(err));
			if (rc == 0) {
				ASSERT_NE(c, nullptr);
				ok++;
			} else {
				ASSERT_LT(rc, 0);
				ASSERT_EQ(c, nullptr);
				ASSERT_TRUE(IsLocated(err, "fuzz.yaml", false))
				    << "seed " << seed << ", " << ex << " mutation " << i
				    << ": bad message '" << err << "' for input:\n"
				    << text;
				// a content error always names a line
				// a content error always names its line
				ASSERT_TRUE(IsLocated(err, "fuzz.yaml", true)) << err;
				CheckLine(err, text);
				if (HasFatalFailure()) {
					ADD_FAILURE() << "seed " << seed << ", " << ex
						      << " mutation " << i << ", input:\n"
						      << text;
					return;
				}
				failed++;
			}
			zap_config_free(c);
		}
	}
	std::printf("config fuzz: %u loaded, %u rejected with a located message\n", ok, failed);
}

TEST(ConfigFuzz, HostileDocumentsAreRejectedCheaply)
{
	std::string deep(10000, '[');
	std::string laughs = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n";
	std::string nul("cluster:\n  id: 1\n  secret: \"ab\\0cd\"\n");
	std::string bad_utf8 = "cluster: \"\xc3\x28\"\n";
	for (const std::string &t : {deep, laughs, nul, bad_utf8, std::string("\0\0\0", 3)}) {
		char err[512] = "";
		zap_config *c = nullptr;
		EXPECT_LT(
		    zap_config_load_string("h.yaml", t.data(), t.size(), &c, err, sizeof(err)), 0);
		EXPECT_EQ(c, nullptr);
		EXPECT_TRUE(IsLocated(err, "h.yaml", true)) << err;
	}
}

// The runner of test_durable_fiu.cpp: flush failures made by libfiu's POSIX preload
// (fiu_posix_preload.so), so that the real libc call (msync, fsync) returns the error,
// as the kernel's would. The runner re-executes itself with the preload in LD_PRELOAD
// when it is not there yet (after a sanitizer's runtime, which must come first), so it
// runs the same from meson and by hand. SHMQ_FIU_POSIX_PRELOAD comes from meson.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <fiu-control.h>
#include <fiu.h>
#include <link.h>
#include <string>
#include <unistd.h>

namespace {

// Whether msync resolves to the preload's wrapper, not to libc's.
bool preload_in_place() {
  void* msync_symbol = ::dlsym(RTLD_DEFAULT, "msync");
  Dl_info info{};
  return msync_symbol != nullptr && ::dladdr(msync_symbol, &info) != 0 && info.dli_fname != nullptr &&
         std::strstr(info.dli_fname, "fiu_posix_preload") != nullptr;
}

// A sanitizer runtime loaded as a dependency (gcc's -fsanitize=address): it has to stay
// the first object after the program, so it goes before the preload.
std::string sanitizer_runtime() {
  std::string found;
  ::dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* out) {
        const char* name = info->dlpi_name;
        if (name != nullptr && (std::strstr(name, "libasan.so") != nullptr || std::strstr(name, "libtsan.so") != nullptr ||
                                std::strstr(name, "libubsan.so") != nullptr)) {
          auto& s = *static_cast<std::string*>(out);
          s += std::string(s.empty() ? "" : ":") + name;
        }
        return 0;
      },
      &found);
  return found;
}

}  // namespace

int main(int argc, char** argv) {
  if (!preload_in_place()) {
    if (std::getenv("SHMQ_FIU_REEXECUTED") != nullptr) {
      std::fprintf(stderr, "test-durable-fiu: %s is in LD_PRELOAD but msync is not its wrapper\n",
                   SHMQ_FIU_POSIX_PRELOAD);
      return 1;
    }
    std::string preload = sanitizer_runtime();
    preload += std::string(preload.empty() ? "" : ":") + SHMQ_FIU_POSIX_PRELOAD;
    if (const char* before = std::getenv("LD_PRELOAD"); before != nullptr && *before != '\0')
      preload += std::string(":") + before;
    ::setenv("LD_PRELOAD", preload.c_str(), 1);
    ::setenv("SHMQ_FIU_REEXECUTED", "1", 1);
    ::execv("/proc/self/exe", argv);
    std::perror("test-durable-fiu: re-executing itself with the libfiu preload");
    return 1;
  }
  if (fiu_init(0) != 0) {
    std::fprintf(stderr, "test-durable-fiu: fiu_init failed\n");
    return 1;
  }
  doctest::Context context(argc, argv);
  return context.run();
}

#include "bundle/bundle.h"

#include <absl/status/status.h>
#include <absl/strings/match.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_split.h>
#include <absl/strings/string_view.h>
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <system_error>
#include <utility>

namespace cortex::bundle {
namespace {

namespace fs = std::filesystem;

constexpr size_t kChunkBytes = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Small helpers

absl::Status ErrnoError(absl::string_view what, int err) {
  std::string message = absl::StrCat(what, ": ", std::strerror(err));
  if (err == ENOENT) return absl::NotFoundError(message);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(message);
  return absl::InternalError(message);
}

absl::Status FsError(absl::string_view what, const std::error_code& ec) {
  return ErrnoError(what, ec.value());
}

absl::Status FileTooBig(absl::string_view path, uint64_t size, uint64_t limit) {
  return absl::InvalidArgumentError(absl::StrCat(
      path, ": file is ", size, " bytes, which exceeds the limit of ", limit, " bytes"));
}

absl::Status ProjectTooBig(absl::string_view qualifier, uint64_t size, uint64_t limit) {
  return absl::InvalidArgumentError(absl::StrCat(
      "project is ", qualifier, size, " bytes, which exceeds the limit of ", limit, " bytes"));
}

// Closes a file descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// Splits a bundle path into its components, dropping "." and empty ones. Rejects absolute paths
// and "..", so the result always stays below whatever directory it is joined to.
absl::StatusOr<std::vector<std::string>> SafeComponents(absl::string_view path) {
  if (path.empty()) return absl::InvalidArgumentError("empty path in bundle");
  if (path.front() == '/') {
    return absl::InvalidArgumentError(absl::StrCat(path, ": absolute paths are not allowed"));
  }
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      return absl::InvalidArgumentError(absl::StrCat(path, ": paths with \"..\" are not allowed"));
    }
    parts.emplace_back(part);
  }
  return parts;
}

// ---------------------------------------------------------------------------------------------
// Project listing

struct ListContext {
  fs::path root;
  std::string config_rel;  // '/'-separated, normalized; empty when there is none
  IgnoreRules rules;
  std::vector<BundleFile>* out;
};

bool HasGeneratedPythonExtension(const std::string& name) {
  for (absl::string_view ext : {".pyc", ".pyo", ".pyd"}) {
    if (name.size() > ext.size() && absl::EndsWith(name, ext)) return true;
  }
  return false;
}

absl::Status Walk(const ListContext& ctx, const std::string& rel_dir) {
  fs::path dir = rel_dir.empty() ? ctx.root : ctx.root / rel_dir;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return FsError(absl::StrCat("listing ", dir.string()), ec);
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    const fs::directory_entry& entry = *it;
    std::string name = entry.path().filename().string();
    std::string rel = rel_dir.empty() ? name : absl::StrCat(rel_dir, "/", name);

    fs::file_status link_status = entry.symlink_status(ec);
    if (ec) return FsError(absl::StrCat("reading ", entry.path().string()), ec);
    bool is_dir = fs::is_directory(link_status);
    bool is_file = fs::is_regular_file(link_status);
    if (fs::is_symlink(link_status)) {
      // Symlinked directories are not followed (they may loop or leave the project). A symlink
      // to a regular file is bundled as a regular file with the target's contents, as the
      // reference CLI does; dangling links and links to anything else are skipped.
      fs::file_status target = entry.status(ec);
      is_file = !ec && fs::is_regular_file(target);
      ec.clear();
    }

    if (name.starts_with(".")) continue;  // dot-files and dot-folders; root .env is re-added
    if (name.starts_with("cortex-debug-")) continue;
    if (is_dir && name == "__pycache__") continue;
    if (!is_dir && HasGeneratedPythonExtension(name)) continue;
    if (ctx.rules.Ignored(rel, is_dir)) continue;

    if (is_dir) {
      if (absl::Status s = Walk(ctx, rel); !s.ok()) return s;
    } else if (is_file && rel != ctx.config_rel) {
      uint64_t size = entry.file_size(ec);  // follows symlinks
      if (ec) return FsError(absl::StrCat("reading ", entry.path().string()), ec);
      ctx.out->push_back(BundleFile{rel, size});
    }
    // Sockets, fifos and devices are not project files.
  }
  if (ec) return FsError(absl::StrCat("listing ", dir.string()), ec);
  return absl::OkStatus();
}

// Deploying from / or ~ would upload everything the user owns.
absl::Status CheckNotTopLevel(const fs::path& canonical_root) {
  const char* which = nullptr;
  std::error_code ec;
  const char* home = std::getenv("HOME");
  if (canonical_root == canonical_root.root_path()) {
    which = "the root directory";
  } else if (home != nullptr && *home != '\0' && fs::canonical(home, ec) == canonical_root) {
    which = "your home directory";
  }
  if (which == nullptr) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("cannot deploy from ", which, " (", canonical_root.string(),
                   "); please deploy from a project directory (every file in the directory that "
                   "contains the configuration file is uploaded)"));
}

absl::StatusOr<std::string> NormalizeConfigPath(const fs::path& canonical_root,
                                                const std::string& config_file) {
  if (config_file.empty()) return std::string();
  fs::path config(config_file);
  if (config.is_absolute()) {
    std::error_code ec;
    fs::path canonical = fs::weakly_canonical(config, ec);
    if (ec) return FsError(absl::StrCat("resolving ", config_file), ec);
    config = canonical.lexically_relative(canonical_root);
  }
  std::string normal = config.lexically_normal().generic_string();
  return normal == "." ? std::string() : normal;
}

absl::StatusOr<std::string> ReadSmallFile(const fs::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoError(absl::StrCat("opening ", path.string()), errno);
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(absl::StrCat("reading ", path.string()), errno);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

// ---------------------------------------------------------------------------------------------
// Archive writing

struct ArchiveWriteDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct ArchiveReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using WriteArchive = std::unique_ptr<archive, ArchiveWriteDeleter>;
using ReadArchive = std::unique_ptr<archive, ArchiveReadDeleter>;
using Entry = std::unique_ptr<archive_entry, EntryDeleter>;

la_ssize_t AppendToString(archive*, void* client_data, const void* buffer, size_t length) {
  static_cast<std::string*>(client_data)->append(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

absl::Status ArchiveError(archive* a, absl::string_view what) {
  const char* message = archive_error_string(a);
  return absl::InternalError(absl::StrCat(what, ": ", message ? message : "archive error"));
}

struct SizedFile {
  const BundleFile* file;
  uint64_t size;
  bool executable;
};

// Copies one file into the archive. Its size must still be the one that was checked against the
// limits and written into the header.
absl::Status WriteEntry(archive* a, const fs::path& root, const SizedFile& source) {
  Fd fd(::open((root / source.file->path).c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoError(absl::StrCat("opening ", source.file->path), errno);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    return ErrnoError(absl::StrCat("reading ", source.file->path), errno);
  }
  absl::Status changed = absl::AbortedError(
      absl::StrCat(source.file->path, ": file changed while the project was being bundled"));
  if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != source.size) return changed;

  Entry entry(archive_entry_new());
  archive_entry_set_pathname(entry.get(), source.file->path.c_str());
  archive_entry_set_filetype(entry.get(), AE_IFREG);
  archive_entry_set_perm(entry.get(), source.executable ? 0755 : 0644);
  archive_entry_set_size(entry.get(), static_cast<la_int64_t>(source.size));
  archive_entry_set_mtime(entry.get(), 0, 0);
  archive_entry_set_uid(entry.get(), 0);
  archive_entry_set_gid(entry.get(), 0);
  if (archive_write_header(a, entry.get()) < ARCHIVE_WARN) {
    return ArchiveError(a, absl::StrCat("adding ", source.file->path));
  }
  uint64_t written = 0;
  char buf[kChunkBytes];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(absl::StrCat("reading ", source.file->path), errno);
    if (n == 0) break;
    written += static_cast<uint64_t>(n);
    if (written > source.size) break;
    if (archive_write_data(a, buf, static_cast<size_t>(n)) != n) {
      return ArchiveError(a, absl::StrCat("adding ", source.file->path));
    }
  }
  if (written != source.size) return changed;
  if (archive_write_finish_entry(a) < ARCHIVE_WARN) {
    return ArchiveError(a, absl::StrCat("adding ", source.file->path));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Archive extraction

absl::Status WriteFileFromArchive(archive* a, const fs::path& target, const std::string& name,
                                  bool executable, const BundleLimits& limits, uint64_t* total) {
  // The process's umask decides who else may read it (the operator's is 077: its owner only).
  Fd fd(::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
               executable ? 0777 : 0666));
  if (fd.get() < 0) {
    if (errno == EEXIST) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": duplicate entry in bundle"));
    }
    return ErrnoError(absl::StrCat("creating ", target.string()), errno);
  }
  uint64_t size = 0;
  char buf[kChunkBytes];
  for (;;) {
    la_ssize_t n = archive_read_data(a, buf, sizeof(buf));
    if (n < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid project bundle: reading ", name, ": ", archive_error_string(a)));
    }
    if (n == 0) break;
    size += static_cast<uint64_t>(n);
    *total += static_cast<uint64_t>(n);
    if (size > limits.max_file_bytes) return FileTooBig(name, size, limits.max_file_bytes);
    if (*total > limits.max_project_bytes) {
      return ProjectTooBig("at least ", *total, limits.max_project_bytes);
    }
    for (la_ssize_t off = 0; off < n;) {
      ssize_t w = ::write(fd.get(), buf + off, static_cast<size_t>(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return ErrnoError(absl::StrCat("writing ", target.string()), errno);
      off += w;
    }
  }
  if (::close(fd.Release()) != 0) {
    return ErrnoError(absl::StrCat("writing ", target.string()), errno);
  }
  return absl::OkStatus();
}

// Creates `dir` inside the staging directory; a clash with a file extracted earlier is the
// bundle's fault, not the disk's.
absl::Status MakeDirs(const fs::path& dir, const std::string& name) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec == std::errc::file_exists || ec == std::errc::not_a_directory) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": conflicts with a file in the bundle"));
  }
  if (ec) return FsError(absl::StrCat("creating ", dir.string()), ec);
  return absl::OkStatus();
}

// Unpacks into `staging`, a fresh directory only this call writes to. Since no entry may be a
// link and no path may leave the directory, every write lands inside it.
absl::Status ExtractInto(const std::string& archive_bytes, const fs::path& staging,
                         const BundleLimits& limits) {
  ReadArchive a(archive_read_new());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_memory(a.get(), archive_bytes.data(), archive_bytes.size()) != ARCHIVE_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid project bundle: ", archive_error_string(a.get())));
  }
  uint64_t total = 0;
  for (;;) {
    archive_entry* entry = nullptr;
    int rc = archive_read_next_header(a.get(), &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid project bundle: ", archive_error_string(a.get())));
    }
    const char* raw_name = archive_entry_pathname(entry);
    if (raw_name == nullptr) raw_name = archive_entry_pathname_utf8(entry);
    if (raw_name == nullptr) return absl::InvalidArgumentError("bundle entry without a name");
    std::string name(raw_name);
    absl::StatusOr<std::vector<std::string>> parts = SafeComponents(name);
    if (!parts.ok()) return parts.status();

    if (archive_entry_hardlink(entry) != nullptr || archive_entry_symlink(entry) != nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": links are not allowed in bundles"));
    }
    fs::path target = staging;
    for (const std::string& part : *parts) target /= part;
    mode_t type = archive_entry_filetype(entry);
    if (type == AE_IFDIR) {
      if (absl::Status s = MakeDirs(target, name); !s.ok()) return s;
      continue;
    }
    if (type != AE_IFREG) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": only regular files and directories are allowed in bundles"));
    }
    if (parts->empty()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": not a valid file name"));
    }
    if (archive_entry_size_is_set(entry)) {
      uint64_t size = static_cast<uint64_t>(std::max<la_int64_t>(archive_entry_size(entry), 0));
      if (size > limits.max_file_bytes) return FileTooBig(name, size, limits.max_file_bytes);
      if (total + size > limits.max_project_bytes) {
        return ProjectTooBig("at least ", total + size, limits.max_project_bytes);
      }
    }
    if (absl::Status s = MakeDirs(target.parent_path(), name); !s.ok()) return s;
    bool executable = (archive_entry_perm(entry) & 0111) != 0;
    absl::Status written = WriteFileFromArchive(a.get(), target, name, executable, limits, &total);
    if (!written.ok()) return written;
  }
  return absl::OkStatus();
}

}  // namespace

// -----------------------------------------------------------------------------------------------
// IgnoreRules

absl::StatusOr<std::vector<BundleFile>> ListProjectFiles(const std::filesystem::path& root,
                                                         const std::string& config_file) {
  std::error_code ec;
  fs::path canonical_root = fs::canonical(root, ec);
  if (ec) return FsError(absl::StrCat("project directory ", root.string()), ec);
  if (!fs::is_directory(canonical_root, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(root.string(), " is not a directory"));
  }
  if (absl::Status s = CheckNotTopLevel(canonical_root); !s.ok()) return s;

  std::vector<BundleFile> files;
  ListContext ctx{root, "", IgnoreRules(), &files};
  absl::StatusOr<std::string> config_rel = NormalizeConfigPath(canonical_root, config_file);
  if (!config_rel.ok()) return config_rel.status();
  ctx.config_rel = *std::move(config_rel);
  fs::path ignore_path = root / ".cortexignore";
  if (fs::is_regular_file(ignore_path, ec)) {
    absl::StatusOr<std::string> text = ReadSmallFile(ignore_path);
    if (!text.ok()) return text.status();
    ctx.rules = IgnoreRules::Parse(*text);
  }
  if (absl::Status s = Walk(ctx, ""); !s.ok()) return s;

  // The reference CLI adds the root .env back after all exclusions, .cortexignore included.
  fs::path env_path = root / ".env";
  if (ctx.config_rel != ".env" && fs::is_regular_file(env_path, ec)) {
    uint64_t size = fs::file_size(env_path, ec);
    if (ec) return FsError(absl::StrCat("reading ", env_path.string()), ec);
    files.push_back(BundleFile{".env", size});
  }
  std::sort(files.begin(), files.end(),
            [](const BundleFile& a, const BundleFile& b) { return a.path < b.path; });
  return files;
}

absl::StatusOr<std::string> CreateBundle(const std::filesystem::path& root,
                                         const std::vector<BundleFile>& files,
                                         const BundleLimits& limits) {
  std::vector<const BundleFile*> sorted;
  sorted.reserve(files.size());
  for (const BundleFile& file : files) sorted.push_back(&file);
  std::sort(sorted.begin(), sorted.end(),
            [](const BundleFile* a, const BundleFile* b) { return a->path < b->path; });

  // Size everything first, so a limit error comes before any bytes are read. Files are opened
  // one at a time afterwards; a project may have more files than the open-file limit.
  std::vector<SizedFile> sized;
  sized.reserve(sorted.size());
  uint64_t total = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    const BundleFile& file = *sorted[i];
    absl::StatusOr<std::vector<std::string>> parts = SafeComponents(file.path);
    if (!parts.ok()) return parts.status();
    if (parts->empty()) return absl::InvalidArgumentError(absl::StrCat(file.path, ": not a file"));
    if (i > 0 && sorted[i - 1]->path == file.path) {
      return absl::InvalidArgumentError(absl::StrCat(file.path, ": listed twice"));
    }
    struct stat st;
    if (::stat((root / file.path).c_str(), &st) != 0) {
      return ErrnoError(absl::StrCat("reading ", file.path), errno);
    }
    if (!S_ISREG(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat(file.path, ": not a regular file"));
    }
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size > limits.max_file_bytes) return FileTooBig(file.path, size, limits.max_file_bytes);
    total += size;
    sized.push_back(SizedFile{&file, size, (st.st_mode & 0111) != 0});
  }
  if (total > limits.max_project_bytes) {
    return ProjectTooBig("", total, limits.max_project_bytes);
  }

  std::string out;
  out.reserve(total + sized.size() * 1024 + 1024);
  WriteArchive a(archive_write_new());
  // pax_restricted is plain ustar unless a name needs an extended header (long or non-ASCII).
  // Names are stored as their raw bytes (hdrcharset=BINARY) rather than converted from the
  // process locale, so the bytes, and thus the project ID, do not depend on the caller's locale.
  if (archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK ||
      archive_write_set_format_option(a.get(), "pax", "hdrcharset", "BINARY") != ARCHIVE_OK ||
      archive_write_set_bytes_in_last_block(a.get(), 1) != ARCHIVE_OK ||
      archive_write_open(a.get(), &out, nullptr, AppendToString, nullptr) != ARCHIVE_OK) {
    return ArchiveError(a.get(), "creating project bundle");
  }
  for (const SizedFile& file : sized) {
    if (absl::Status s = WriteEntry(a.get(), root, file); !s.ok()) return s;
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) {
    return ArchiveError(a.get(), "creating project bundle");
  }
  return out;
}

absl::Status ExtractBundle(const std::string& archive, const std::filesystem::path& destination,
                           const BundleLimits& limits) {
  std::error_code ec;
  fs::file_status status = fs::symlink_status(destination, ec);
  if (fs::exists(status)) {
    if (!fs::is_directory(status)) {
      return absl::FailedPreconditionError(
          absl::StrCat(destination.string(), " already exists and is not a directory"));
    }
    if (!fs::is_empty(destination, ec) || ec) {
      return absl::FailedPreconditionError(
          absl::StrCat(destination.string(), " already exists and is not empty"));
    }
  }
  fs::path absolute = fs::absolute(destination, ec);
  if (ec) return FsError(absl::StrCat("resolving ", destination.string()), ec);
  absolute = absolute.lexically_normal();
  if (!absolute.has_filename()) absolute = absolute.parent_path();
  fs::path parent = absolute.parent_path();
  fs::create_directories(parent, ec);
  if (ec) return FsError(absl::StrCat("creating ", parent.string()), ec);

  // A sibling staging directory lets the final rename be atomic: `destination` is either absent
  // (or empty) or complete, never half-extracted.
  std::string pattern =
      (parent / absl::StrCat(".", absolute.filename().string(), ".extract-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    return ErrnoError(absl::StrCat("creating a staging directory in ", parent.string()), errno);
  }
  fs::path staging(pattern);
  absl::Status result = ExtractInto(archive, staging, limits);
  if (result.ok() && ::chmod(staging.c_str(), 0755) != 0) {
    result = ErrnoError(absl::StrCat("setting the mode of ", staging.string()), errno);
  }
  if (result.ok()) {
    // rename(2) replaces an empty directory, and fails if one appeared and was filled meanwhile.
    if (::rename(staging.c_str(), absolute.c_str()) != 0) {
      result = ErrnoError(absl::StrCat("moving the project into ", absolute.string()), errno);
    }
  }
  if (!result.ok()) fs::remove_all(staging, ec);
  return result;
}

}  // namespace cortex::bundle

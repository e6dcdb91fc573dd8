"""Parent pinning rewrites exactly the FROM lines dockerfile.parse located."""

from koji_containerbuild import native_build


def test_pinned_dockerfile_replaces_resolved_froms_only():
    text = ('ARG TAG=1.0-1\n'
            'FROM --platform=linux/amd64 acme/base:${TAG} \\\n'
            '    AS build\n'
            'RUN make\n'
            'FROM quay.example.org/other:2\n'
            'FROM build\n'
            'COPY --from=build /x /x\n')
    froms = native_build.from_instructions(text)
    pin = {'pullspec': 'reg.example.com/acme/base@sha256:' + 'a' * 64}
    out = native_build.pinned_dockerfile(text, froms, {'acme/base:1.0-1': pin,
                                                       'build': {'pullspec': 'never-used'}})
    assert out.splitlines() == [
        'ARG TAG=1.0-1',
        'FROM --platform=linux/amd64 reg.example.com/acme/base@sha256:' + 'a' * 64 + ' AS build',
        'RUN make',
        'FROM quay.example.org/other:2',
        'FROM build',
        'COPY --from=build /x /x',
    ]
